/**
 * A fault-injecting TCP proxy for one link between two replicas' buses: real sockets,
 * real kernel buffers, controlled cuts.
 *
 * The bus has the lower replica index dial the higher one, so one proxy per pair carries
 * both directions: `forward` (dialer → listener) and `backward` (listener → dialer).
 * - both directions cut: a symmetric partition; open connections are destroyed and new
 *   ones are accepted and closed at once (the dialer sees resets, as behind a firewall
 *   that rejects);
 * - one direction cut: a one-way partition; the bytes of that direction are held (not
 *   delivered, the reader stops reading so the sender's socket fills up, like a link that
 *   loses every packet one way and TCP retransmits in vain) and the other direction flows.
 *   Healing delivers what was held, as TCP would after the link comes back, unless the
 *   endpoints gave up on the connection first;
 * - a delay: every chunk is delivered `delayMs` after it was read, in order (a slow link).
 * @module
 */
import { connect, createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { assert } from "../assert.ts";

/** Bytes held per direction of a connection while it is cut one way (beyond: not read). */
export const heldBytesMax = 4 * 1024 * 1024;

/** Connections open through one proxy at most (the bus keeps one per pair; redials replace it). */
export const proxyConnectionsMax = 64;

/** Which directions of a link carry bytes. */
export interface LinkState {
  /** Dialer (lower index) → listener (higher index). */
  readonly forward: boolean;
  /** Listener → dialer. */
  readonly backward: boolean;
  /** Added latency per chunk, both directions, ms (0 or absent: none). */
  readonly delayMs?: number;
}

/** Largest delay a link accepts, ms. */
export const linkDelayMsMax = 10_000;

interface Direction {
  readonly from: Socket;
  readonly to: Socket;
  held: Uint8Array[];
  heldBytes: number;
  /** When the last delayed chunk is due (keeps delayed chunks in order). */
  lastDueMs: number;
}

interface Pipe {
  readonly forward: Direction;
  readonly backward: Direction;
}

/** One proxied link: listens on a local port, forwards to `target`. */
export class LinkProxy {
  readonly #targetHost: string;
  readonly #targetPort: number;
  readonly #server: Server;
  readonly #pipes = new Set<Pipe>();
  #state: LinkState = { forward: true, backward: true };
  #port = 0;
  /** Connections accepted and closed at once because the link was cut both ways. */
  refused = 0;

  /** A proxy to `targetHost:targetPort` (not listening until {@link start}). */
  constructor(targetHost: string, targetPort: number) {
    assert(Number.isInteger(targetPort) && targetPort > 0 && targetPort < 65536, "proxy target port");
    this.#targetHost = targetHost;
    this.#targetPort = targetPort;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /** Listens on `host:port` (0: any free port) and resolves to the port. */
  start(host: string, port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        const address = this.#server.address();
        assert(address !== null && typeof address === "object", "proxy listening");
        this.#port = address.port;
        resolve(this.#port);
      });
    });
  }

  /** The local port. */
  get port(): number {
    return this.#port;
  }

  /** The directions that carry bytes now. */
  get state(): LinkState {
    return this.#state;
  }

  /** Sets which directions carry bytes; see the module comment for what each means. */
  set(state: LinkState): void {
    const delayMs = state.delayMs ?? 0;
    assert(Number.isFinite(delayMs) && delayMs >= 0 && delayMs <= linkDelayMsMax, `link delay ${delayMs} ms`);
    this.#state = state;
    if (!state.forward && !state.backward) {
      for (const pipe of this.#pipes) this.#close(pipe);
      return;
    }
    for (const pipe of this.#pipes) {
      if (state.forward) this.#flush(pipe.forward);
      if (state.backward) this.#flush(pipe.backward);
    }
  }

  /** Stops listening and destroys every connection. */
  close(): Promise<void> {
    for (const pipe of this.#pipes) this.#close(pipe);
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if ((!this.#state.forward && !this.#state.backward) || this.#pipes.size >= proxyConnectionsMax) {
      this.refused++;
      client.destroy();
      return;
    }
    const upstream = connect(this.#targetPort, this.#targetHost);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pipe: Pipe = {
      forward: { from: client, to: upstream, held: [], heldBytes: 0, lastDueMs: 0 },
      backward: { from: upstream, to: client, held: [], heldBytes: 0, lastDueMs: 0 },
    };
    this.#pipes.add(pipe);
    this.#wire(pipe.forward, () => this.#state.forward);
    this.#wire(pipe.backward, () => this.#state.backward);
    const end = () => this.#close(pipe);
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  }

  #wire(direction: Direction, open: () => boolean): void {
    direction.from.on("data", (chunk: Uint8Array) => {
      if (open() && direction.held.length === 0) {
        const delayMs = this.#state.delayMs ?? 0;
        if (delayMs === 0) direction.to.write(chunk);
        else this.#later(direction, chunk, delayMs);
        return;
      }
      direction.held.push(chunk);
      direction.heldBytes += chunk.length;
      if (direction.heldBytes >= heldBytesMax) direction.from.pause();
    });
  }

  /** Delivers `chunk` after `delayMs`, never before a chunk read earlier. */
  #later(direction: Direction, chunk: Uint8Array, delayMs: number): void {
    const due = Math.max(performance.now() + delayMs, direction.lastDueMs);
    direction.lastDueMs = due;
    setTimeout(() => {
      if (!direction.to.destroyed) direction.to.write(chunk);
    }, due - performance.now());
  }

  #flush(direction: Direction): void {
    if (direction.to.destroyed) return;
    for (const chunk of direction.held) direction.to.write(chunk);
    direction.held = [];
    direction.heldBytes = 0;
    direction.from.resume();
  }

  #close(pipe: Pipe): void {
    if (!this.#pipes.delete(pipe)) return;
    pipe.forward.from.destroy();
    pipe.backward.from.destroy();
  }
}
