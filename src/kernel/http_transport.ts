/**
 * How the effect runner sends one HTTP attempt. Two transports with one contract:
 *
 * - `nodeHttpTransport`: node:http/node:https with a keep-alive agent. The default on
 *   Node, where fetch (undici) spends most of an attempt building web streams, cloning
 *   the request body for redirects and making transferable abort signals: about 4x the
 *   CPU of node:http for a small webhook;
 * - `fetchTransport`: any fetch (Bun's and Deno's are native and fast; tests inject one).
 *
 * Both send the request only to the URL the app named: redirects are not followed (a 3xx
 * is an answer like any other and the runner retries it), so an effect id never reaches
 * a host the app did not choose. Neither asks for compression. The response body is read
 * up to `bodySizeMax` bytes and decoded as UTF-8 (invalid bytes become U+FFFD).
 * @module
 */
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import type { IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { assert } from "../assert.ts";
import { concatBytes } from "../codec/bytes.ts";

/** One attempt as the runner asks for it. */
export interface HttpAttemptRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array | undefined;
  /** Aborts the attempt (timeout or runner stopped). */
  readonly signal: AbortSignal;
  /** Bytes of the response body kept; more is cut and `truncated` set. */
  readonly bodySizeMax: number;
}

/** The receiver's answer. */
export interface HttpAttemptResponse {
  readonly status: number;
  readonly body: string;
  readonly truncated: boolean;
}

/** Sends attempts; `close` releases its connections. */
export interface HttpTransport {
  send(request: HttpAttemptRequest): Promise<HttpAttemptResponse>;
  close(): void;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** The body read so far as one array (the chunks add up to the bytes kept). */
function joined(chunks: readonly Uint8Array[]): Uint8Array {
  return chunks.length === 1 ? chunks[0]! : concatBytes(chunks);
}

/** Reads at most `sizeMax` bytes of a fetch response body, then cancels the rest. */
async function readBounded(response: Response, sizeMax: number): Promise<{ body: string; truncated: boolean }> {
  if (response.body === null) return { body: "", truncated: false };
  // A declared length within the bound: read it whole (no stream reader per response).
  const declared = response.headers.get("content-length");
  if (declared !== null && /^\d{1,9}$/.test(declared) && Number(declared) <= sizeMax) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length <= sizeMax) return { body: bytes.length === 0 ? "" : utf8.decode(bytes), truncated: false };
    return { body: utf8.decode(bytes.subarray(0, sizeMax)), truncated: true };
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.length > sizeMax) {
      chunks.push(value.subarray(0, sizeMax - size));
      size = sizeMax;
      truncated = true;
      await reader.cancel().catch(() => {});
      break;
    }
    chunks.push(value);
    size += value.length;
  }
  return { body: size === 0 ? "" : utf8.decode(joined(chunks)), truncated };
}

/** Attempts through `fetchFunction` (redirects not followed: see the module comment). */
export function fetchTransport(fetchFunction: typeof fetch): HttpTransport {
  return {
    async send(request) {
      const response = await fetchFunction(request.url, {
        method: request.method,
        headers: request.headers,
        redirect: "manual",
        ...(request.body !== undefined ? { body: request.body as string | Uint8Array<ArrayBuffer> } : {}),
        signal: request.signal,
      });
      const text = await readBounded(response, request.bodySizeMax);
      return { status: response.status, body: text.body, truncated: text.truncated };
    },
    close() {},
  };
}

/**
 * Attempts through node:http/node:https with keep-alive agents of at most `socketsMax`
 * connections per receiver host.
 */
export function nodeHttpTransport(socketsMax: number): HttpTransport {
  assert(Number.isSafeInteger(socketsMax) && socketsMax >= 1, "socketsMax must be a positive integer");
  const agentOptions = { keepAlive: true, maxSockets: socketsMax, maxFreeSockets: socketsMax };
  const httpAgent = new HttpAgent(agentOptions);
  const httpsAgent = new HttpsAgent(agentOptions);
  return {
    send(request) {
      return new Promise<HttpAttemptResponse>((resolve, reject) => {
        let settled = false;
        const fail = (error: unknown): void => {
          if (settled) return;
          settled = true;
          reject(error instanceof Error ? error : new Error(String(error)));
        };
        const onResponse = (response: IncomingMessage): void => {
          const status = response.statusCode ?? 0;
          const chunks: Uint8Array[] = [];
          let size = 0;
          const finish = (truncated: boolean): void => {
            if (settled) return;
            settled = true;
            resolve({ status, body: size === 0 ? "" : utf8.decode(joined(chunks)), truncated });
          };
          response.on("data", (chunk: Uint8Array) => {
            if (settled) return;
            if (size + chunk.length > request.bodySizeMax) {
              chunks.push(chunk.subarray(0, request.bodySizeMax - size));
              size = request.bodySizeMax;
              finish(true);
              // The rest is not read: this connection is not reused.
              response.destroy();
              return;
            }
            chunks.push(chunk);
            size += chunk.length;
          });
          response.on("end", () => finish(false));
          response.on("error", fail);
          response.on("close", () => fail(new Error("connection closed before the response ended")));
        };
        let url: URL;
        try {
          url = new URL(request.url);
        } catch (error) {
          fail(error);
          return;
        }
        const secure = url.protocol === "https:";
        const outgoing = (secure ? httpsRequest : httpRequest)(
          url,
          { method: request.method, headers: { "user-agent": "chronon", ...request.headers }, agent: secure ? httpsAgent : httpAgent, signal: request.signal },
          onResponse,
        );
        outgoing.on("error", fail);
        outgoing.end(request.body);
      });
    },
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/**
 * The transport a runner uses when it is given no fetch: node:http on Node, the
 * runtime's own fetch on Bun and Deno.
 */
export function defaultHttpTransport(socketsMax: number): HttpTransport {
  const runtime = globalThis as { Bun?: unknown; Deno?: unknown };
  if (runtime.Bun === undefined && runtime.Deno === undefined) return nodeHttpTransport(socketsMax);
  return fetchTransport(fetch);
}
