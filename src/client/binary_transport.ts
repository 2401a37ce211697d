/**
 * The client's side of the binary protocol (src/api/client_port.ts, docs/api.md): one TCP
 * connection per replica address `chronon://host:port`, opened on first use and again
 * after it drops, carrying many clients' requests at once (ids tell the answers apart).
 * Server-side only (node:net, on Node, Bun and Deno); browsers use HTTP.
 *
 * An attempt resolves as the HTTP transport's do: an answer, an API error, or "lost" (the
 * connection failed or the attempt's time ran out; the request may have arrived). Attempt
 * deadlines are checked by one sweep timer per connection, not a timer per request.
 * @module
 */
import { connect } from "node:net";
import type { Socket } from "node:net";
import { decodeValue, encodeValue } from "../app/value_codec.ts";
import { FrameReader, frameOf, framesOf } from "../net/client_frame.ts";

/** Protocol version of the hello (the server's is in src/api/client_port.ts). */
const clientProtocolVersion = 1;

function encodeClientFrame(value: unknown): Uint8Array {
  return frameOf(encodeValue(value));
}

/** What one attempt came to (the same shape as the HTTP transport's). */
export type BinaryAttempt =
  | { readonly kind: "ok"; readonly values: readonly unknown[] }
  | { readonly kind: "error"; readonly code: string; readonly message: string; readonly primary: string | null }
  | { readonly kind: "lost"; readonly message: string };

/** Requests one connection keeps waiting at once (a bound, like the server's). */
export const binaryPendingMax = 4096;
/** Interval of the deadline sweep while requests wait. */
const sweepMs = 20;
/** Largest answer frame accepted (a reply body plus its envelope). */
const answerSizeMax = 16 * 1024 * 1024;

/** The replica refused the hello (a wrong token): definite, nothing was sent. */
class HelloRefused extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface Waiter {
  readonly resolve: (attempt: BinaryAttempt) => void;
  readonly deadlineMs: number;
}

/** One connection to one replica's client port. */
export class BinaryConnection {
  readonly address: string;
  #socket: Socket | null = null;
  #ready: Promise<void> | null = null;
  #reader = new FrameReader(answerSizeMax);
  readonly #waiters = new Map<number, Waiter>();
  #idNext = 1;
  #sweep: ReturnType<typeof setInterval> | null = null;
  #helloWaiter: ((error: string | HelloRefused | null) => void) | null = null;
  /** True from the hello's answer until the connection drops: calls skip the connect. */
  #open = false;
  /** Whether the socket keeps the process alive (only while requests wait). */
  #referenced = true;
  /** CBOR payloads of this turn's requests, framed together at its end. */
  #out: Uint8Array[] = [];
  #flushScheduled = false;

  /** A connection to `address` (chronon://host:port), authenticated with `token` if given. */
  constructor(address: string, private readonly token: string | null) {
    this.address = address;
  }

  /** Sends `[id, kind, ...args]` and resolves with the answer, an error, or "lost". */
  call(kind: number, args: readonly unknown[], timeoutMs: number): Promise<BinaryAttempt> {
    if (this.#waiters.size >= binaryPendingMax) return Promise.resolve({ kind: "error", code: "unavailable", message: "too many requests waiting on this connection", primary: null });
    const deadlineMs = Date.now() + timeoutMs;
    // Connected (every call but the first few): no await, no promise of its own.
    if (this.#open) return this.#send(kind, args, deadlineMs);
    return this.#connectThenSend(kind, args, timeoutMs, deadlineMs);
  }

  async #connectThenSend(kind: number, args: readonly unknown[], timeoutMs: number, deadlineMs: number): Promise<BinaryAttempt> {
    try {
      await this.#connect(timeoutMs);
    } catch (error) {
      // A refused hello (a wrong token) is definite: no request was sent.
      if (error instanceof HelloRefused) return { kind: "error", code: error.code, message: error.message, primary: null };
      return { kind: "lost", message: `${this.address}: ${(error as Error).message}` };
    }
    if (this.#waiters.size >= binaryPendingMax) return { kind: "error", code: "unavailable", message: "too many requests waiting on this connection", primary: null };
    return await this.#send(kind, args, deadlineMs);
  }

  #send(kind: number, args: readonly unknown[], deadlineMs: number): Promise<BinaryAttempt> {
    const socket = this.#socket;
    if (socket === null) return Promise.resolve({ kind: "lost", message: `${this.address}: connection closed` });
    if (!this.#referenced) {
      socket.ref();
      this.#referenced = true;
    }
    const id = this.#idNext++;
    if (this.#idNext > 0x7fff_ffff) this.#idNext = 1;
    const answer = new Promise<BinaryAttempt>((resolve) => this.#waiters.set(id, { resolve, deadlineMs }));
    this.#write(encodeValue([id, kind, ...args]));
    this.#sweep ??= setInterval(() => this.#expire(), sweepMs);
    return answer;
  }

  /** Closes the connection; waiting attempts resolve "lost". */
  close(): void {
    this.#drop("connection closed by the client");
  }

  #connect(timeoutMs: number): Promise<void> {
    if (this.#ready !== null) return this.#ready;
    const match = /^chronon:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(this.address);
    if (match === null) return Promise.reject(new Error("address must be chronon://host:port"));
    const host = match[1]!.replace(/^\[(.*)\]$/, "$1");
    const port = Number(match[2]);
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    this.#socket = socket;
    this.#referenced = true;
    this.#reader = new FrameReader(answerSizeMax);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#helloWaiter = null;
        reject(new Error(`no hello answer within ${timeoutMs} ms`));
        this.#drop("connect timed out");
      }, timeoutMs);
      this.#helloWaiter = (error) => {
        clearTimeout(timer);
        this.#helloWaiter = null;
        if (error === null) {
          this.#open = true;
          resolve();
        } else reject(typeof error === "string" ? new Error(error) : error);
      };
    });
    socket.on("data", (chunk: Uint8Array) => this.#onData(socket, chunk));
    socket.on("error", (error: Error) => this.#drop(error.message, socket));
    socket.on("close", () => this.#drop("connection closed", socket));
    socket.write(encodeClientFrame([0, clientProtocolVersion, this.token]));
    this.#ready = ready;
    // A failed connect is forgotten, so the next attempt dials again.
    ready.catch(() => {
      if (this.#ready === ready) this.#ready = null;
    });
    return ready;
  }

  #write(payload: Uint8Array): void {
    this.#out.push(payload);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Requests made in one turn (many clients sharing this connection) leave in one write.
    queueMicrotask(() => {
      this.#flushScheduled = false;
      const payloads = this.#out;
      this.#out = [];
      const socket = this.#socket;
      if (socket === null || payloads.length === 0) return;
      socket.write(framesOf(payloads, payloads.length));
    });
  }

  #onData(socket: Socket, chunk: Uint8Array): void {
    if (socket !== this.#socket) return;
    const frames = this.#reader.push(chunk);
    if (frames === "oversized") {
      this.#drop("answer frame too large");
      return;
    }
    for (const payload of frames) {
      let message: unknown;
      try {
        message = decodeValue(payload);
      } catch {
        this.#drop("malformed answer frame");
        return;
      }
      if (!Array.isArray(message) || typeof message[0] !== "number") {
        this.#drop("malformed answer frame");
        return;
      }
      const id = message[0];
      if (id === 0) {
        // The hello's answer, or an error about the connection itself.
        if (message[1] === clientProtocolVersion && message.length === 2) this.#helloWaiter?.(null);
        else {
          const refused = new HelloRefused(String(message[2]), `${this.address}: ${String(message[3])}`);
          this.#helloWaiter?.(refused);
          this.#drop(refused.message);
          return;
        }
        continue;
      }
      const waiter = this.#waiters.get(id);
      if (waiter === undefined) continue; // its attempt timed out already
      this.#waiters.delete(id);
      // An idle connection does not keep the process alive (HTTP clients do not either).
      if (this.#waiters.size === 0 && this.#referenced) {
        socket.unref();
        this.#referenced = false;
      }
      if (message[1] === 0) waiter.resolve({ kind: "ok", values: message.slice(2) });
      else {
        waiter.resolve({
          kind: "error",
          code: String(message[2]),
          message: String(message[3]),
          primary: typeof message[4] === "string" ? message[4] : null,
        });
      }
    }
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, waiter] of this.#waiters) {
      if (waiter.deadlineMs <= now) {
        this.#waiters.delete(id);
        waiter.resolve({ kind: "lost", message: `${this.address}: no answer in time` });
      }
    }
    if (this.#waiters.size === 0 && this.#sweep !== null) {
      clearInterval(this.#sweep);
      this.#sweep = null;
    }
  }

  #drop(reason: string, socket: Socket | null = this.#socket): void {
    if (socket !== this.#socket || socket === null) return;
    this.#socket = null;
    this.#ready = null;
    this.#open = false;
    this.#out = [];
    socket.destroy();
    this.#helloWaiter?.(reason);
    for (const waiter of this.#waiters.values()) waiter.resolve({ kind: "lost", message: `${this.address}: ${reason}` });
    this.#waiters.clear();
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
  }
}

/** Connections shared by the clients of one process, by address and token. */
const shared = new Map<string, { connection: BinaryConnection; users: number }>();

/**
 * The shared connection to `address` for `token` (one per process: many clients' requests
 * leave in one write per turn). Call {@link releaseConnection} once per acquire.
 */
export function acquireConnection(address: string, token: string | null): BinaryConnection {
  const key = `${address}\u0000${token ?? ""}`;
  let entry = shared.get(key);
  if (entry === undefined) {
    entry = { connection: new BinaryConnection(address, token), users: 0 };
    shared.set(key, entry);
  }
  entry.users++;
  return entry.connection;
}

/** Gives back a connection from {@link acquireConnection}; the last user closes it. */
export function releaseConnection(connection: BinaryConnection, token: string | null): void {
  const key = `${connection.address}\u0000${token ?? ""}`;
  const entry = shared.get(key);
  if (entry === undefined || entry.connection !== connection) return;
  entry.users--;
  if (entry.users === 0) {
    shared.delete(key);
    connection.close();
  }
}
