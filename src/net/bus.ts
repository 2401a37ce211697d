/**
 * The replica bus: opaque messages between replica indexes over authenticated TCP.
 *
 * - The lower index dials the higher one, so each pair shares one connection and
 *   simultaneous connects cannot happen; a newer authenticated connection from the same
 *   peer replaces the older one (the peer restarted).
 * - Each peer has a bounded send queue (bytes and messages). When it is full a message is
 *   dropped (oldest by default: VSR tolerates loss and prefers fresh messages), counted.
 * - A queue drains into the socket only while `write()` accepts more, so memory stays
 *   within the queue bound plus one socket buffer per peer. Messages sent in one turn
 *   are written together (one system call per peer) in a microtask at its end.
 * - Dials back off exponentially with jitter, capped, and reset after a handshake.
 * - A faulty connection is dropped, counted by reason, and logged once per reason per peer.
 * @module
 */
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { connect } from "node:net";
import { assert } from "../assert.ts";
import { Connection } from "./connection.ts";
import type { ConnectionEvents, ConnectionOptions } from "./connection.ts";
import { busCountersNew } from "./counters.ts";
import type { BusCounters, DropReason } from "./counters.ts";

/** host:port of a replica's bus endpoint. */
export interface BusAddress {
  readonly host: string;
  readonly port: number;
}

/** Options of a bus. Sizes in bytes, times in milliseconds. */
export interface BusOptions {
  /** 128-bit cluster id; a peer naming another is dropped. */
  readonly cluster: Uint8Array;
  /** This replica's index. */
  readonly replica: number;
  /** Every replica's bus address, by index (this replica's is where it listens). */
  readonly addresses: readonly BusAddress[];
  /** The cluster secret (bytes, or a string taken as UTF-8); at least 16 bytes. */
  readonly secret: Uint8Array | string;
  /** Largest message payload; larger messages are not sent, larger frames drop the connection. */
  readonly frameSizeMax?: number;
  /** Bytes queued per peer before messages are dropped. */
  readonly queueBytesMax?: number;
  /** Messages queued per peer before messages are dropped. */
  readonly queueMessagesMax?: number;
  /** Which message a full queue drops. */
  readonly queueDrop?: "oldest" | "newest";
  /** First reconnect delay and its cap. */
  readonly reconnectDelayMsMin?: number;
  readonly reconnectDelayMsMax?: number;
  /** Time a connection has to complete the handshake. */
  readonly handshakeTimeoutMs?: number;
  /** Inbound connections allowed to be handshaking at once. */
  readonly connectionsPendingMax?: number;
  /** Host to listen on (defaults to this replica's address host). */
  readonly listenHost?: string;
  /** Where the one line per fault and peer goes (defaults to console.error). */
  readonly log?: (line: string) => void;
  /** Uniform [0, 1) source for backoff jitter (defaults to Math.random). */
  readonly random?: () => number;
}

/** Default bounds; see docs/network.md. */
export const busDefaults = {
  frameSizeMax: 4 * 1024 * 1024,
  queueBytesMax: 16 * 1024 * 1024,
  queueMessagesMax: 4096,
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 2000,
  handshakeTimeoutMs: 2000,
  connectionsPendingMax: 16,
} as const;

/** Distinct (peer, reason) pairs remembered for log-once; beyond it, faults are only counted. */
const logKeysMax = 1024;

/** A peer's state as seen by this bus (for /v1/status). */
export interface BusPeerStatus {
  readonly replica: number;
  readonly connected: boolean;
  readonly queueMessages: number;
  readonly queueBytes: number;
  readonly droppedQueueFull: number;
}

/**
 * Handler of delivered messages; `from` is authenticated.
 *
 * Ownership: `bytes` belongs to the handler. It is a plain Uint8Array (not a Node
 * Buffer, whose `slice()` would be a view) over an ArrayBuffer of its own, of exactly
 * `bytes.length` bytes at offset 0, that the bus never reads or writes again and hands to
 * nobody else. The handler may keep it, decode views into it, or write to it, without
 * copying first. (The bus copies each received payload once, out of the socket's chunks,
 * after verifying it; a message to oneself is copied too, since its sender still owns
 * the original.)
 */
export type BusMessageHandler = (from: number, bytes: Uint8Array) => void;

/** Messages written to a socket in one batch at most (one buffer of small frames, or a writev). */
const flushBatchMessagesMax = 256;
/** Payload bytes written in one batch at most: the bound on the overshoot past the socket's high-water mark. */
const flushBatchBytesMax = 64 * 1024;

class Peer {
  connection: Connection | null = null;
  /** Ring buffer of queued payloads. */
  readonly queue: (Uint8Array | undefined)[];
  queueHead = 0;
  queueCount = 0;
  queueBytes = 0;
  droppedQueueFull = 0;
  dialTimer: ReturnType<typeof setTimeout> | null = null;
  dialing: Connection | null = null;
  dials = 0;
  delayMs: number;
  /** A flush is queued for the end of this turn (see Bus.send). */
  flushQueued = false;

  constructor(readonly index: number, queueMessagesMax: number, delayMs: number) {
    this.queue = new Array(queueMessagesMax);
    this.delayMs = delayMs;
  }

  push(payload: Uint8Array): void {
    assert(this.queueCount < this.queue.length, "push into a queue with room");
    this.queue[(this.queueHead + this.queueCount) % this.queue.length] = payload;
    this.queueCount += 1;
    this.queueBytes += payload.length;
  }

  shift(): Uint8Array {
    assert(this.queueCount > 0, "shift from a non-empty queue");
    const payload = this.queue[this.queueHead];
    assert(payload !== undefined, "queued slot holds a payload");
    this.queue[this.queueHead] = undefined;
    this.queueHead = (this.queueHead + 1) % this.queue.length;
    this.queueCount -= 1;
    this.queueBytes -= payload.length;
    return payload;
  }
}

/** The replica message bus. */
export class Bus {
  /** Traffic and fault counters (read them; the bus updates them in place). */
  readonly counters: BusCounters = busCountersNew();
  private readonly options: Required<Omit<BusOptions, "listenHost" | "secret">> & { listenHost: string };
  private readonly secret: Uint8Array;
  private readonly peers: (Peer | null)[];
  private readonly pending = new Set<Connection>();
  private readonly logged = new Set<string>();
  private server: Server | null = null;
  private handler: BusMessageHandler | null = null;
  /** The messages of the batch being written (reused; emptied after each write). */
  private readonly batch: Uint8Array[] = [];
  private closed = false;

  constructor(options: BusOptions) {
    const replicaCount = options.addresses.length;
    assert(options.cluster.length === 16, "cluster id is 16 bytes");
    assert(replicaCount >= 1 && replicaCount <= 0xffff, "replica count fits u16");
    assert(Number.isInteger(options.replica) && options.replica >= 0 && options.replica < replicaCount, "replica index within the addresses");
    this.secret = typeof options.secret === "string" ? new TextEncoder().encode(options.secret) : options.secret.slice();
    assert(this.secret.length >= 16, "cluster secret of at least 16 bytes");
    const self = options.addresses[options.replica];
    assert(self !== undefined, "own address");
    this.options = {
      cluster: options.cluster.slice(),
      replica: options.replica,
      addresses: options.addresses.map((a) => ({ host: a.host, port: a.port })),
      frameSizeMax: options.frameSizeMax ?? busDefaults.frameSizeMax,
      queueBytesMax: options.queueBytesMax ?? busDefaults.queueBytesMax,
      queueMessagesMax: options.queueMessagesMax ?? busDefaults.queueMessagesMax,
      queueDrop: options.queueDrop ?? "oldest",
      reconnectDelayMsMin: options.reconnectDelayMsMin ?? busDefaults.reconnectDelayMsMin,
      reconnectDelayMsMax: options.reconnectDelayMsMax ?? busDefaults.reconnectDelayMsMax,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? busDefaults.handshakeTimeoutMs,
      connectionsPendingMax: options.connectionsPendingMax ?? busDefaults.connectionsPendingMax,
      listenHost: options.listenHost ?? self.host,
      log: options.log ?? ((line: string) => console.error(line)),
      random: options.random ?? Math.random,
    };
    const o = this.options;
    assert(o.frameSizeMax >= 1 && o.frameSizeMax <= 0xffff_ffff, "frame size limit fits u32");
    assert(o.queueBytesMax >= o.frameSizeMax, "a queue holds at least one largest message");
    assert(o.queueMessagesMax >= 1, "a queue holds at least one message");
    assert(o.reconnectDelayMsMin >= 1 && o.reconnectDelayMsMin <= o.reconnectDelayMsMax, "reconnect delays ordered");
    this.peers = o.addresses.map((_, index) =>
      index === o.replica ? null : new Peer(index, o.queueMessagesMax, o.reconnectDelayMsMin)
    );
  }

  /** Sets the handler of delivered messages (one handler; a later call replaces it). */
  onMessage(handler: BusMessageHandler): void {
    this.handler = handler;
  }

  /** Listens for lower-index peers and dials higher-index ones. Resolves once listening. */
  async start(): Promise<void> {
    assert(this.server === null && !this.closed, "start once");
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    const self = this.options.addresses[this.options.replica];
    assert(self !== undefined, "own address");
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(self.port, this.options.listenHost, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (error: Error) => this.logOnce("listener", "error", `bus listener: ${error.message}`));
    for (const peer of this.peers) {
      if (peer !== null && peer.index > this.options.replica) this.dial(peer);
    }
  }

  /** The port the bus listens on (useful when configured with port 0). */
  get port(): number {
    const address = this.server?.address();
    assert(address !== null && address !== undefined && typeof address === "object", "listening");
    return address.port;
  }

  /**
   * Queues `bytes` for replica `to` and writes as much as the socket takes. Never blocks
   * and never grows memory past the queue bound: a full queue drops a message (counted).
   * A message to this replica itself is delivered asynchronously. Takes `bytes` over
   * (they are queued and written as they are): the caller must not write to them again;
   * one message may be sent to several replicas.
   */
  send(to: number, bytes: Uint8Array): void {
    assert(Number.isInteger(to) && to >= 0 && to < this.peers.length, "send to a replica of the cluster");
    if (this.closed) return;
    if (bytes.length > this.options.frameSizeMax) {
      this.counters.messagesDroppedOversized += 1;
      this.logOnce(`replica ${to}`, "send_oversized", `bus: message of ${bytes.length} bytes to replica ${to} exceeds frameSizeMax ${this.options.frameSizeMax}; dropped`);
      return;
    }
    if (to === this.options.replica) {
      // A copy the handler owns (see BusMessageHandler); a Buffer's own slice() would be a view.
      const copy = new Uint8Array(bytes);
      queueMicrotask(() => {
        if (!this.closed) this.handler?.(to, copy);
      });
      return;
    }
    const peer = this.peers[to];
    assert(peer !== null && peer !== undefined, "peer exists");
    // Not copied: the bus holds `bytes` until the socket has written them (see above).
    while (peer.queueCount === peer.queue.length || peer.queueBytes + bytes.length > this.options.queueBytesMax) {
      this.counters.messagesDroppedQueueFull += 1;
      peer.droppedQueueFull += 1;
      if (this.options.queueDrop === "newest") return;
      peer.shift();
    }
    peer.push(bytes);
    // Messages sent in one turn (a pump of the replica's Ready) leave in one write system
    // call per peer at the end of the turn, not one write each.
    if (!peer.flushQueued) {
      peer.flushQueued = true;
      queueMicrotask(() => {
        peer.flushQueued = false;
        this.flush(peer);
      });
    }
  }

  /** Per-peer connection and queue state. */
  peerStatus(): BusPeerStatus[] {
    const out: BusPeerStatus[] = [];
    for (const peer of this.peers) {
      if (peer === null) continue;
      out.push({
        replica: peer.index,
        connected: peer.connection?.isOpen ?? false,
        queueMessages: peer.queueCount,
        queueBytes: peer.queueBytes,
        droppedQueueFull: peer.droppedQueueFull,
      });
    }
    return out;
  }

  /** Closes the listener and every connection; pending messages are discarded. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers) {
      if (peer === null) continue;
      if (peer.dialTimer !== null) clearTimeout(peer.dialTimer);
      peer.dialTimer = null;
      peer.dialing?.destroy();
      peer.connection?.destroy();
    }
    for (const connection of [...this.pending]) connection.destroy();
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private connectionOptions(role: "dialer" | "acceptor", remote: number | null): ConnectionOptions {
    return {
      role,
      local: this.options.replica,
      remoteExpected: remote,
      replicaCount: this.peers.length,
      cluster: this.options.cluster,
      secret: this.secret,
      frameSizeMax: this.options.frameSizeMax,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
    };
  }

  private accept(socket: Socket): void {
    this.counters.connectionsAccepted += 1;
    if (this.closed) {
      socket.destroy();
      return;
    }
    const label = `${socket.remoteAddress ?? "unknown"}`;
    if (this.pending.size >= this.options.connectionsPendingMax) {
      this.counters.connectionsDropped.pending_full += 1;
      this.logOnce(label, "pending_full", `bus: dropped a connection from ${label}: ${this.pending.size} already handshaking`);
      socket.destroy();
      return;
    }
    const connection = new Connection(socket, this.connectionOptions("acceptor", null), this.counters, this.events(label));
    this.pending.add(connection);
  }

  private dial(peer: Peer): void {
    assert(peer.index > this.options.replica, "the lower index dials");
    if (this.closed || peer.dialing !== null || peer.connection !== null) return;
    peer.dialTimer = null;
    if (peer.dials > 0) this.counters.reconnects += 1;
    peer.dials += 1;
    const address = this.options.addresses[peer.index];
    assert(address !== undefined, "peer address");
    const socket = connect({ host: address.host, port: address.port });
    const label = `replica ${peer.index}`;
    peer.dialing = new Connection(socket, this.connectionOptions("dialer", peer.index), this.counters, this.events(label));
  }

  private dialLater(peer: Peer): void {
    if (this.closed || peer.dialTimer !== null || peer.index < this.options.replica) return;
    // Full jitter within the upper half keeps peers from retrying in lock step.
    const delayMs = Math.round(peer.delayMs * (0.5 + 0.5 * this.options.random()));
    peer.delayMs = Math.min(peer.delayMs * 2, this.options.reconnectDelayMsMax);
    peer.dialTimer = setTimeout(() => this.dial(peer), delayMs);
  }

  private events(label: string): ConnectionEvents {
    return {
      open: (connection) => this.onOpen(connection),
      message: (connection, payload) => {
        assert(connection.remote !== null, "messages come from an authenticated peer");
        this.handler?.(connection.remote, payload);
      },
      drain: (connection) => {
        const peer = connection.remote === null ? null : this.peers[connection.remote];
        if (peer && peer.connection === connection) this.flush(peer);
      },
      close: (connection, reason, detail) => this.onClose(connection, reason, detail, label),
    };
  }

  private onOpen(connection: Connection): void {
    const remote = connection.remote;
    assert(remote !== null && remote !== this.options.replica, "authenticated peer is another replica");
    const peer = this.peers[remote];
    assert(peer !== null && peer !== undefined, "authenticated peer exists");
    this.pending.delete(connection);
    if (peer.dialing === connection) peer.dialing = null;
    const previous = peer.connection;
    peer.connection = connection;
    // A newer authenticated connection means the peer restarted or the old one is half-open.
    if (previous !== null) previous.destroy();
    peer.delayMs = this.options.reconnectDelayMsMin;
    this.flush(peer);
  }

  private onClose(connection: Connection, reason: DropReason | null, detail: string, label: string): void {
    this.pending.delete(connection);
    const remote = connection.remote;
    const peer = remote === null ? null : this.peers[remote] ?? null;
    const where = peer !== null && (peer.connection === connection || peer.dialing === connection) ? `replica ${remote}` : label;
    if (reason !== null) {
      this.logOnce(where, reason, `bus: dropped connection with ${where}: ${reason} (${detail}); counted, further ones not logged`);
    }
    if (peer === null) return;
    if (peer.dialing === connection) peer.dialing = null;
    if (peer.connection === connection) peer.connection = null;
    if (peer.index > this.options.replica && peer.connection === null && peer.dialing === null) this.dialLater(peer);
  }

  private flush(peer: Peer): void {
    const connection = peer.connection;
    if (connection === null || !connection.isOpen) return;
    const batch = this.batch;
    // Batches of small frames leave as one buffer, a large one as a writev of its header
    // and payload; the queue stops draining once the socket is past its high-water mark,
    // so at most one batch (or one large message) is written beyond it.
    while (peer.queueCount > 0 && connection.writable) {
      let bytes = 0;
      while (peer.queueCount > 0 && batch.length < flushBatchMessagesMax && bytes < flushBatchBytesMax) {
        const payload = peer.shift();
        batch.push(payload);
        bytes += payload.length;
      }
      connection.sendBatch(batch, batch.length);
      batch.length = 0;
    }
  }

  private logOnce(where: string, reason: string, line: string): void {
    const key = `${where}\u0000${reason}`;
    if (this.logged.has(key) || this.logged.size >= logKeysMax) return;
    this.logged.add(key);
    this.options.log(line);
  }
}
