/**
 * The HTTP API as a hono app over a {@link NodeHandle}. Every body is size-limited and
 * validated here, before the handle sees it; every error is `{ error: { code, message,
 * primary? } }` with a code from src/api/errors.ts. Routes and examples: docs/api.md.
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { Context } from "hono";
import { assert } from "../assert.ts";
import { decodeBody, jsonContentType, readBodyLimited, valueResponse, wantsCbor } from "./body.ts";
import { apiErrorStatus } from "./errors.ts";
import type { ApiError, ApiErrorCode } from "./errors.ts";
import { latencySecondsBuckets, metricsContentType } from "./metrics.ts";
import type { Counter, Histogram, MetricsRegistry } from "./metrics.ts";
import type { HandleResult, NodeHandle } from "./node_handle.ts";

/** Options of {@link createApi}. */
export interface ApiOptions {
  /** Bearer token; when set, writes require it, and reads too when readAccess is "token". */
  readonly token?: string;
  /**
   * Writes when no token is set: "open" (the default of this library, for tests and
   * embedding) or "refuse" (what a node started from a cluster file without a token does).
   */
  readonly tokenlessWrites?: "open" | "refuse";
  /** Who may read (queries, listings, channels, status, metrics) without the token. */
  readonly readAccess: "public" | "token";
  /** Largest request body in bytes. */
  readonly bodySizeMax: number;
  /** Time the handle has to answer before the API answers `timeout` (504). */
  readonly requestTimeoutMs?: number;
  /** Largest page of effect listings and channel reads. */
  readonly pageLimitMax?: number;
  /** Where the API counts requests and latencies (optional). */
  readonly metrics?: MetricsRegistry;
}

/** Defaults for the optional options. */
export const apiDefaults = { requestTimeoutMs: 10_000, pageLimitMax: 1000, pageLimitDefault: 100 } as const;

/** Longest channel name accepted, in characters. */
export const channelNameLengthMax = 256;

type Access = "write" | "read" | "public";

const hex32Re = /^[0-9a-f]{32}$/;

function hexOf(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

function bytesOfHex(hex: string): Uint8Array {
  assert(hex32Re.test(hex), "hex validated by the caller");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** A session id as sent by a client: 32 lower-case hex digits, or 16 bytes (CBOR). */
function sessionOf(value: unknown): Uint8Array | null {
  if (value instanceof Uint8Array) return value.length === 16 ? value : null;
  if (typeof value === "string" && hex32Re.test(value)) return bytesOfHex(value);
  return null;
}

/** A JSON error response. */
export function errorResponse(error: ApiError): Response {
  const body: { code: ApiErrorCode; message: string; primary?: string } = { code: error.code, message: error.message };
  if (error.primary !== undefined) body.primary = error.primary;
  return new Response(JSON.stringify({ error: body }), {
    status: apiErrorStatus[error.code],
    headers: { "content-type": jsonContentType },
  });
}

function fail(code: ApiErrorCode, message: string): Response {
  return errorResponse({ code, message });
}

function tokenDigest(token: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token).digest());
}

/** A query parameter as a bounded non-negative safe integer, its default when absent. */
function intParam(raw: string | undefined, name: string, fallback: number, max: number): number | Response {
  if (raw === undefined || raw === "") return fallback;
  if (!/^[0-9]{1,16}$/.test(raw)) return fail("bad_request", `${name} must be a non-negative integer`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value > max) return fail("bad_request", `${name} must be at most ${max}`);
  return value;
}

/** Creates the API app. Serve it with src/api/serve.ts or call `app.fetch(request)`. */
export function createApi(handle: NodeHandle, options: ApiOptions): Hono {
  assert(Number.isSafeInteger(options.bodySizeMax) && options.bodySizeMax > 0, "bodySizeMax is positive");
  assert(options.token === undefined || options.token.length > 0, "an empty token is no token");
  const requestTimeoutMs = options.requestTimeoutMs ?? apiDefaults.requestTimeoutMs;
  const pageLimitMax = options.pageLimitMax ?? apiDefaults.pageLimitMax;
  const tokenExpected = options.token === undefined ? null : tokenDigest(options.token);
  let requests: Counter | null = null;
  let latency: Histogram | null = null;
  if (options.metrics !== undefined) {
    requests = options.metrics.counter("chronon_api_requests_total", "HTTP API requests by route and answer code.", ["route", "code"]);
    latency = options.metrics.histogram("chronon_api_request_duration_seconds", "HTTP API request latency by route.", latencySecondsBuckets, ["route"]);
  }

  const app = new Hono();

  /** Checks the bearer token for a route of the given access class; a Response refuses. */
  function authorize(c: Context, access: Access): Response | null {
    if (access === "public") return null;
    if (tokenExpected === null) {
      if (access === "write" && options.tokenlessWrites === "refuse") {
        return fail("unauthorized", 'no API token is configured, so writes are refused (set "token" in the cluster file; "token": "none" opens writes, for development only)');
      }
      return null;
    }
    if (access === "read" && options.readAccess === "public") return null;
    const header = c.req.header("authorization");
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) return fail("unauthorized", "this route requires an Authorization: Bearer token");
    // Compare digests so the comparison time depends on neither token's length nor content.
    if (!timingSafeEqual(tokenDigest(match[1]!), tokenExpected)) return fail("unauthorized", "wrong bearer token");
    return null;
  }

  /** Runs a handle call with the request timeout; a throw or a timeout becomes `onFault`. */
  async function call<T>(run: () => Promise<HandleResult<T>>, onFault: ApiErrorCode): Promise<HandleResult<T>> {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const timeout = new Promise<HandleResult<T>>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, error: { code: "timeout", message: `no answer within ${requestTimeoutMs} ms; the outcome is unknown` } }), requestTimeoutMs);
    });
    try {
      return await Promise.race([run(), timeout]);
    } catch (error) {
      return { ok: false, error: { code: onFault, message: `node error: ${(error as Error).message}` } };
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  /** Registers a route with its access class and metrics. */
  function route(method: "GET" | "POST", path: string, access: Access, run: (c: Context) => Promise<Response> | Response): void {
    app.on(method, path, async (c) => {
      const started = performance.now();
      const refused = authorize(c, access);
      const response = refused ?? await run(c);
      requests?.inc({ route: `${method} ${path}`, code: String(response.status) });
      latency?.observe((performance.now() - started) / 1000, { route: `${method} ${path}` });
      return response;
    });
  }

  /** Reads and decodes a body; a Response refuses it. */
  async function body(c: Context): Promise<{ value: unknown } | Response> {
    const bytes = await readBodyLimited(c.req.raw, options.bodySizeMax);
    if (!(bytes instanceof Uint8Array)) return fail(bytes.code, bytes.message);
    const decoded = decodeBody(bytes, c.req.header("content-type") ?? null);
    if ("code" in decoded) return fail(decoded.code, decoded.message);
    return decoded;
  }

  function answer<T>(c: Context, result: HandleResult<T>, shape: (value: T) => unknown): Response {
    if (!result.ok) return errorResponse(result.error);
    return valueResponse(shape(result.value), wantsCbor(c.req.header("accept")));
  }

  function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) && !(value instanceof Map);
  }

  route("POST", "/v1/sessions", "write", async (c) => {
    const decoded = await body(c);
    if (decoded instanceof Response) return decoded;
    let session: Uint8Array;
    if (decoded.value === undefined || (isRecord(decoded.value) && decoded.value.session === undefined)) {
      session = crypto.getRandomValues(new Uint8Array(16));
    } else {
      const given = isRecord(decoded.value) ? sessionOf(decoded.value.session) : null;
      if (given === null) return fail("bad_request", "session must be 32 lower-case hex digits (or 16 bytes in CBOR)");
      session = given;
    }
    const result = await call(() => handle.registerSession(session), "unavailable");
    return answer(c, result, (value) => ({ session: hexOf(value.session) }));
  });

  route("POST", "/v1/requests", "write", async (c) => {
    const decoded = await body(c);
    if (decoded instanceof Response) return decoded;
    const value = decoded.value;
    if (!isRecord(value)) return fail("bad_request", "body must be an object { session, request, event }");
    const session = sessionOf(value.session);
    if (session === null) return fail("bad_request", "session must be 32 lower-case hex digits (or 16 bytes in CBOR)");
    const request = typeof value.request === "bigint" ? Number(value.request) : value.request;
    if (typeof request !== "number" || !Number.isSafeInteger(request) || request < 1) {
      return fail("bad_request", "request must be an integer ≥ 1");
    }
    if (!("event" in value) || value.event === undefined) return fail("bad_request", "event is required");
    // A submit that throws may have reached the log: its outcome is unknown.
    const result = await call(() => handle.submit({ session, request, event: value.event }), "timeout");
    return answer(c, result, (reply) => reply.effects === undefined ? { reply: reply.reply, op: reply.op } : { reply: reply.reply, op: reply.op, effects: reply.effects });
  });

  route("POST", "/v1/queries", "read", async (c) => {
    const consistency = c.req.query("consistency") ?? "linearizable";
    if (consistency !== "linearizable" && consistency !== "stale") {
      return fail("bad_request", "consistency must be linearizable or stale");
    }
    const decoded = await body(c);
    if (decoded instanceof Response) return decoded;
    if (!isRecord(decoded.value) || !("query" in decoded.value)) return fail("bad_request", "body must be an object { query }");
    const query = decoded.value.query;
    const result = await call(() => handle.query({ query, consistency }), "unavailable");
    return answer(c, result, (value) => ({ result: value.result }));
  });

  route("GET", "/v1/effects", "read", async (c) => {
    const status = c.req.query("status") ?? "pending";
    if (status !== "pending" && status !== "dead") return fail("bad_request", "status must be pending or dead");
    const after = c.req.query("after") ?? null;
    if (after !== null && !hex32Re.test(after)) return fail("bad_request", "after must be an effect id (32 hex digits)");
    const limit = intParam(c.req.query("limit"), "limit", Math.min(apiDefaults.pageLimitDefault, pageLimitMax), pageLimitMax);
    if (limit instanceof Response) return limit;
    if (limit === 0) return fail("bad_request", "limit must be at least 1");
    const result = await call(() => handle.listEffects({ status, after, limit }), "unavailable");
    return answer(c, result, (value) => ({ effects: value.effects, next: value.next }));
  });

  route("POST", "/v1/effects/:id/retry", "write", async (c) => {
    const id = c.req.param("id") ?? "";
    if (!hex32Re.test(id)) return fail("bad_request", "effect id must be 32 lower-case hex digits");
    const bytes = await readBodyLimited(c.req.raw, options.bodySizeMax);
    if (!(bytes instanceof Uint8Array)) return fail(bytes.code, bytes.message);
    const result = await call(() => handle.retryEffect(id), "timeout");
    return answer(c, result, (value) => ({ id: value.id }));
  });

  route("GET", "/v1/channels/:name", "read", async (c) => {
    const channel = c.req.param("name") ?? "";
    if (channel.length === 0 || channel.length > channelNameLengthMax) {
      return fail("bad_request", `channel name must be 1..${channelNameLengthMax} characters`);
    }
    const cursor = intParam(c.req.query("cursor"), "cursor", 0, Number.MAX_SAFE_INTEGER);
    if (cursor instanceof Response) return cursor;
    const limit = intParam(c.req.query("limit"), "limit", Math.min(apiDefaults.pageLimitDefault, pageLimitMax), pageLimitMax);
    if (limit instanceof Response) return limit;
    if (limit === 0) return fail("bad_request", "limit must be at least 1");
    const result = await call(() => handle.readChannel({ channel, cursor, limit }), "unavailable");
    return answer(c, result, (value) => ({ entries: value.entries, next: value.next }));
  });

  route("GET", "/v1/status", "read", (c) => valueResponse(handle.status(), wantsCbor(c.req.header("accept"))));

  route("GET", "/healthz", "public", () => {
    const status = handle.status();
    const healthy = status.status !== "recovering";
    return valueResponse({ ok: healthy, status: status.status, view: status.view, commit: status.commit }, false, healthy ? 200 : 503);
  });

  route("GET", "/metrics", "read", () => new Response(handle.metricsText(), { headers: { "content-type": metricsContentType } }));

  app.notFound((c) => fail("not_found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error) => fail("unavailable", `internal error: ${error.message}`));
  return app;
}
