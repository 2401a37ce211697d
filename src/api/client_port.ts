/**
 * The binary client protocol: length-prefixed CBOR frames over TCP on a replica's client
 * port, for server-side clients (the HTTP API stays for browsers and curl). Same
 * semantics as the HTTP routes (sessions, request numbers, definite vs unknown errors,
 * the same error codes), without HTTP's per-request parsing, headers and JSON.
 *
 * Wire format (docs/api.md): every frame is a u32 little-endian payload length and a CBOR
 * payload (src/app/value_codec.ts). The client speaks first with a hello, then sends
 * requests tagged with its own ids; answers may come in any order and carry the id.
 *
 *     hello     client → [0, version, token | null]      server → [0, version] or an error with id 0
 *     register  [id, 1, session(16 bytes)]                → [id, 0, session]
 *     submit    [id, 2, session, request, event]          → [id, 0, reply, op]
 *     query     [id, 3, query, 0 linearizable | 1 stale]  → [id, 0, result]
 *     error     → [id, 1, code, message, primary | null]
 *
 * Bounds: frame size (bodySizeMax plus room for the envelope), requests in flight per
 * connection, connections. Replies produced in one turn leave in one write per connection.
 * A malformed frame or an oversized one closes the connection (after an error frame when
 * the peer can still be told which request was wrong).
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { assert } from "../assert.ts";
import { decodeValue, encodeValue } from "../app/value_codec.ts";
import { cborItemEnd, cborUintSize, writeCborUint } from "../codec/cbor_item.ts";
import { FrameReader, frameOf, framesOf } from "../net/client_frame.ts";
import type { ApiError, ApiErrorCode } from "./errors.ts";
import type { EncodedSubmitReply, HandleResult, NodeHandle } from "./node_handle.ts";

/** Protocol version sent in the hello. */
export const clientProtocolVersion = 1;
/** Room for the envelope around a request body (id, kind, session, request number). */
export const frameEnvelopeSizeMax = 1024;
/** Requests one connection may have in flight; more answer `unavailable`. */
export const connectionRequestsMax = 4096;
/** Connections served at once; more are closed at accept. */
export const connectionsMaxDefault = 4096;

/** Message kinds of the first element after the id. */
export const ClientFrameKind = { hello: 0, register: 1, submit: 2, query: 3 } as const;
/** Status of an answer. */
export const ClientAnswer = { ok: 0, error: 1 } as const;

/** Options of {@link serveClientPort}. */
export interface ClientPortOptions {
  readonly hostname: string;
  readonly port: number;
  /** Bearer token; when set, a hello must carry it for writes (and reads when readAccess is "token"). */
  readonly token?: string;
  /** Writes without a configured token: refused (default) or open. */
  readonly tokenlessWrites?: "open" | "refuse";
  readonly readAccess: "public" | "token";
  /** Largest request body (the event or query) in bytes, as for HTTP. */
  readonly bodySizeMax: number;
  readonly connectionsMax?: number;
  /**
   * Rewrites the primary named in a `not_primary` error (the handle gives its HTTP API
   * URL) into the address of its client port, so binary clients can follow the hint.
   */
  readonly primaryHint?: (apiUrl: string) => string | undefined;
}

/** A listening client port. */
export interface ClientPortHandle {
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  close(): Promise<void>;
}

function digest(token: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token).digest());
}

/** Encodes one frame: length prefix and CBOR payload. */
export function encodeClientFrame(value: unknown): Uint8Array {
  return frameOf(encodeValue(value));
}

/** The payload of an error answer (framed when the turn's answers are written). */
function errorFrame(id: number, error: ApiError, primaryHint?: (apiUrl: string) => string | undefined): Uint8Array {
  const primary = error.primary === undefined ? null : primaryHint === undefined ? error.primary : primaryHint(error.primary) ?? null;
  return encodeValue([id, ClientAnswer.error, error.code, error.message, primary]);
}

function fault(code: ApiErrorCode, message: string): ApiError {
  return { code, message };
}

/** CBOR head of a definite array of 5 items: a submit frame `[id, 2, session, request, event]`. */
const submitArrayHead = 0x85;
/** CBOR head of a definite array of 4 items: an ok answer to a submit `[id, 0, reply, op]`. */
const answerArrayHead = 0x84;

/**
 * Where the event starts in a submit frame's payload, or -1 when the frame is not the
 * plain definite array the client library writes (then the decoded event is used). The
 * event is the last item, so it runs to the end of the payload.
 */
function submitEventAt(payload: Uint8Array): number {
  if (payload[0] !== submitArrayHead) return -1;
  let at = 1;
  for (let item = 0; item < 4; item++) {
    at = cborItemEnd(payload, at);
    if (at < 0) return -1;
  }
  return cborItemEnd(payload, at) === payload.length ? at : -1;
}

/** The payload of `[id, 0, reply, op]` around a reply already encoded (one copy of it). */
function submitAnswer(id: number, replyEncoded: Uint8Array, op: number): Uint8Array {
  const out = new Uint8Array(1 + cborUintSize(id) + 1 + replyEncoded.length + cborUintSize(op));
  out[0] = answerArrayHead;
  let at = writeCborUint(out, 1, id);
  out[at++] = ClientAnswer.ok;
  out.set(replyEncoded, at);
  at = writeCborUint(out, at + replyEncoded.length, op);
  assert(at === out.length, "the answer filled its buffer");
  return out;
}

/** A request id: a safe non-negative integer chosen by the client. */
function isId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

class ClientConnection {
  #authorizedWrite = false;
  #authorizedRead = false;
  #helloDone = false;
  #inflight = 0;
  #closed = false;
  /** Payloads answered in this turn, framed and written together at its end. */
  #out: Uint8Array[] = [];
  #flushScheduled = false;
  readonly #reader: FrameReader;
  /** The payload of the frame being handled (its event is handed on as bytes). */
  #payload: Uint8Array | null = null;

  constructor(
    readonly socket: Socket,
    private readonly handle: NodeHandle,
    private readonly options: ClientPortOptions,
    private readonly tokenExpected: Uint8Array | null,
    private readonly onClose: (connection: ClientConnection) => void,
  ) {
    this.#reader = new FrameReader(options.bodySizeMax + frameEnvelopeSizeMax);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    socket.on("error", () => this.close());
    socket.on("close", () => this.close());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.destroy();
    this.onClose(this);
  }

  #onData(chunk: Uint8Array): void {
    this.#payload = null;
    if (this.#closed) return;
    const frames = this.#reader.push(chunk);
    if (frames === "oversized") {
      this.#send(errorFrame(0, fault("too_large", `frame larger than ${this.options.bodySizeMax + frameEnvelopeSizeMax} bytes; connection closed`)));
      this.#flush();
      this.close();
      return;
    }
    for (const payload of frames) {
      if (this.#closed) return;
      let message: unknown;
      try {
        message = decodeValue(payload);
      } catch (error) {
        this.#refuse(0, fault("bad_request", `malformed CBOR frame: ${(error as Error).message}`));
        return;
      }
      this.#payload = payload;
      this.#onMessage(message);
      this.#payload = null;
    }
  }

  /** Answers with an error and closes: the stream can no longer be trusted. */
  #refuse(id: number, error: ApiError): void {
    this.#send(errorFrame(id, error));
    this.#flush();
    this.close();
  }

  #onMessage(message: unknown): void {
    if (!Array.isArray(message) || message.length < 2 || !isId(message[0])) {
      this.#refuse(0, fault("bad_request", "a frame is an array [id, kind, …]"));
      return;
    }
    const id = message[0];
    const kind = message[1];
    if (!this.#helloDone) {
      if (id !== 0 || kind !== clientProtocolVersion) {
        this.#refuse(0, fault("bad_request", `the first frame must be the hello [0, ${clientProtocolVersion}, token | null]`));
        return;
      }
      this.#hello(message[2]);
      return;
    }
    if (this.#inflight >= connectionRequestsMax) {
      this.#send(errorFrame(id, fault("unavailable", `more than ${connectionRequestsMax} requests in flight on this connection`)));
      return;
    }
    switch (kind) {
      case ClientFrameKind.register: {
        if (!this.#authorizedWrite) return this.#unauthorized(id);
        const session = message[2];
        if (!(session instanceof Uint8Array) || session.length !== 16) {
          this.#send(errorFrame(id, fault("bad_request", "session must be 16 bytes")));
          return;
        }
        this.#run(id, this.handle.registerSession(session), (value) => [value.session]);
        return;
      }
      case ClientFrameKind.submit: {
        if (!this.#authorizedWrite) return this.#unauthorized(id);
        const session = message[2];
        const request = typeof message[3] === "bigint" ? Number(message[3]) : message[3];
        if (!(session instanceof Uint8Array) || session.length !== 16) {
          this.#send(errorFrame(id, fault("bad_request", "session must be 16 bytes")));
          return;
        }
        if (typeof request !== "number" || !Number.isSafeInteger(request) || request < 1) {
          this.#send(errorFrame(id, fault("bad_request", "request must be an integer ≥ 1")));
          return;
        }
        if (message.length < 5 || message[4] === undefined) {
          this.#send(errorFrame(id, fault("bad_request", "event is required")));
          return;
        }
        // A submit that throws may have reached the log: its outcome is unknown.
        const eventAt = this.#payload === null || this.handle.submitEncoded === undefined || message.length !== 5 ? -1 : submitEventAt(this.#payload);
        if (eventAt >= 0) {
          // The event leaves as the bytes it came in (decoded above only to validate it),
          // and the reply comes back encoded: no strings decoded and encoded again here.
          const eventEncoded = this.#payload!.subarray(eventAt);
          this.#runEncoded(id, this.handle.submitEncoded!({ session, request, eventEncoded }));
          return;
        }
        this.#run(id, this.handle.submit({ session, request, event: message[4] }), (value) => [value.reply, value.op], "timeout");
        return;
      }
      case ClientFrameKind.query: {
        if (!this.#authorizedRead) return this.#unauthorized(id);
        const consistency = message[3] === 1 ? "stale" : message[3] === 0 || message[3] === undefined ? "linearizable" : null;
        if (consistency === null) {
          this.#send(errorFrame(id, fault("bad_request", "consistency must be 0 (linearizable) or 1 (stale)")));
          return;
        }
        this.#run(id, this.handle.query({ query: message[2], consistency }), (value) => [value.result]);
        return;
      }
      default:
        this.#send(errorFrame(id, fault("bad_request", `unknown frame kind ${String(kind)}`)));
    }
  }

  #hello(token: unknown): void {
    const expected = this.tokenExpected;
    if (expected === null) {
      this.#authorizedWrite = this.options.tokenlessWrites !== "refuse";
      this.#authorizedRead = true;
    } else if (typeof token === "string" && token.length > 0) {
      // Compare digests so the time depends on neither token's length nor content.
      if (!timingSafeEqual(digest(token), expected)) {
        this.#refuse(0, fault("unauthorized", "wrong token"));
        return;
      }
      this.#authorizedWrite = true;
      this.#authorizedRead = true;
    } else {
      this.#authorizedRead = this.options.readAccess === "public";
    }
    this.#helloDone = true;
    this.#send(encodeValue([0, clientProtocolVersion]));
  }

  #unauthorized(id: number): void {
    const message = this.tokenExpected === null
      ? 'no API token is configured, so writes are refused (set "token" in the cluster file; "token": "none" opens writes, for development only)'
      : "this request needs the token in the hello";
    this.#send(errorFrame(id, fault("unauthorized", message)));
  }

  #run<T>(id: number, pending: Promise<HandleResult<T>>, shape: (value: T) => unknown[], onThrow: ApiErrorCode = "unavailable"): void {
    this.#inflight++;
    pending.then(
      (result) => {
        this.#inflight--;
        if (this.#closed) return;
        if (!result.ok) {
          this.#send(errorFrame(id, result.error, this.options.primaryHint));
          return;
        }
        let frame: Uint8Array;
        try {
          frame = encodeValue([id, ClientAnswer.ok, ...shape(result.value)]);
        } catch (error) {
          frame = errorFrame(id, fault("rejected", `reply cannot be encoded: ${(error as Error).message}`));
        }
        this.#send(frame);
      },
      (error: unknown) => {
        this.#inflight--;
        if (!this.#closed) this.#send(errorFrame(id, fault(onThrow, `node error: ${(error as Error).message}`)));
      },
    );
  }

  /** {@link #run} for an encoded submit: the answer is built around the reply's bytes. */
  #runEncoded(id: number, pending: Promise<HandleResult<EncodedSubmitReply>>): void {
    this.#inflight++;
    pending.then(
      (result) => {
        this.#inflight--;
        if (this.#closed) return;
        this.#send(result.ok ? submitAnswer(id, result.value.replyEncoded, result.value.op) : errorFrame(id, result.error, this.options.primaryHint));
      },
      (error: unknown) => {
        this.#inflight--;
        // A submit that throws may have reached the log: its outcome is unknown.
        if (!this.#closed) this.#send(errorFrame(id, fault("timeout", `node error: ${(error as Error).message}`)));
      },
    );
  }

  /** Queues an answer's payload; everything queued in this turn leaves in one write. */
  #send(payload: Uint8Array): void {
    if (this.#closed) return;
    this.#out.push(payload);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#out.length === 0) return;
    // One buffer for the turn's frames: each payload is copied once, behind its prefix.
    const bytes = framesOf(this.#out, this.#out.length);
    this.#out = [];
    this.socket.write(bytes);
    // Back-pressure: a client that does not read its answers stops being read from, so
    // its requests (and their answers) cannot pile up here.
    if (this.socket.writableNeedDrain && !this.socket.isPaused()) {
      this.socket.pause();
      this.socket.once("drain", () => {
        if (!this.#closed) this.socket.resume();
      });
    }
  }
}

/** Serves the binary client protocol over `handle`; resolves once listening. */
export async function serveClientPort(handle: NodeHandle, options: ClientPortOptions): Promise<ClientPortHandle> {
  assert(Number.isInteger(options.port) && options.port >= 0 && options.port <= 65535, "port in range");
  assert(Number.isSafeInteger(options.bodySizeMax) && options.bodySizeMax > 0, "bodySizeMax is positive");
  assert(options.token === undefined || options.token.length > 0, "an empty token is no token");
  const connectionsMax = options.connectionsMax ?? connectionsMaxDefault;
  const tokenExpected = options.token === undefined ? null : digest(options.token);
  const connections = new Set<ClientConnection>();
  const server: Server = createServer((socket) => {
    if (connections.size >= connectionsMax) {
      socket.destroy();
      return;
    }
    const connection = new ClientConnection(socket, handle, options, tokenExpected, (c) => connections.delete(c));
    connections.add(connection);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  assert(address !== null && typeof address === "object", "listening on a TCP address");
  return {
    port: address.port,
    get connections() {
      return connections.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const connection of [...connections]) connection.close();
        server.close(() => resolve());
      }),
  };
}
