/**
 * One TCP connection between two replicas: runs the handshake, then reads and writes
 * authenticated message frames. Any fault drops the connection with a reason; the bus
 * counts it, logs it once, and (if it dialed) reconnects.
 * @module
 */
import type { Socket } from "node:net";
import { assert } from "../assert.ts";
import { ByteQueue } from "./byte_queue.ts";
import type { BusCounters, DropReason } from "./counters.ts";
import { HmacSha256 } from "../codec/hmac_sha256.ts";
import {
  constantTimeEqual, decodeFrameHeader, encodeFrame, encodeFrameHeaderInto, FrameKind, frameHeaderSize, verifyFrameParts,
} from "./frame.ts";
import type { FrameHeader } from "./frame.ts";
import {
  decodeHello, encodeHello, helloSize, keyDerive, nonceNew, proofCompute, proofSize,
} from "./handshake.ts";
import type { Role } from "./handshake.ts";

/** Largest payload accepted before the handshake completes (hello or proof). */
const handshakePayloadSizeMax = Math.max(helloSize, proofSize);

/**
 * Payloads up to this size are copied behind their headers into one buffer per run of
 * frames, so a flush of small messages is one plain write (Node's writev of a header and
 * a payload chunk each cost more than the copy); larger payloads are written as they
 * are, after a header of their own (one writev of the corked flush).
 */
export const framePayloadCopySizeMax = 4096;

/** Fixed parameters of a connection. */
export interface ConnectionOptions {
  readonly role: Role;
  readonly local: number;
  /** The replica dialed (dialer), or null (acceptor: learned from the hello). */
  readonly remoteExpected: number | null;
  readonly replicaCount: number;
  readonly cluster: Uint8Array;
  readonly secret: Uint8Array;
  readonly frameSizeMax: number;
  readonly handshakeTimeoutMs: number;
}

/** What a connection reports to its bus. */
export interface ConnectionEvents {
  /** The handshake completed; `connection.remote` is authenticated. */
  open(connection: Connection): void;
  /**
   * A verified message frame's payload: a fresh buffer of exactly its size (offset 0)
   * that the connection never touches again; the receiver owns it.
   */
  message(connection: Connection, payload: Uint8Array): void;
  /** The socket can take more bytes again. */
  drain(connection: Connection): void;
  /** The connection is gone; `reason` is set when this end dropped it for a fault. */
  close(connection: Connection, reason: DropReason | null, detail: string): void;
}

type State = "hello" | "proof" | "open" | "closed";

/** A connection in handshake or open state. */
export class Connection {
  /** The authenticated (after open) or claimed (during handshake) peer index. */
  remote: number | null;
  private state: State = "hello";
  private readonly nonceLocal = nonceNew();
  private nonceRemote: Uint8Array | null = null;
  private keySend: HmacSha256 | null = null;
  private keyReceive: HmacSha256 | null = null;
  private sequenceSend = 0;
  private sequenceReceive = 0;
  private readonly received = new ByteQueue();
  private headerPending: FrameHeader | null = null;
  private handshakeTimer: ReturnType<typeof setTimeout> | null;

  constructor(
    readonly socket: Socket,
    private readonly options: ConnectionOptions,
    private readonly counters: BusCounters,
    private readonly events: ConnectionEvents,
  ) {
    assert(options.cluster.length === 16, "cluster id is 16 bytes");
    assert((options.role === "dialer") === (options.remoteExpected !== null), "a dialer knows whom it dials");
    this.remote = options.remoteExpected;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on("data", (chunk: Uint8Array) => this.onData(chunk));
    socket.on("drain", () => {
      if (this.state === "open") this.events.drain(this);
    });
    socket.on("error", () => this.close(null, "socket error"));
    socket.on("close", () => this.close(null, "socket closed"));
    this.handshakeTimer = setTimeout(() => this.drop("handshake_timeout", "no handshake in time"), options.handshakeTimeoutMs);
    if (options.role === "dialer") this.sendHello();
  }

  /** True once the handshake has completed and until the connection closes. */
  get isOpen(): boolean {
    return this.state === "open";
  }

  /** True when the socket's write buffer is below its high-water mark. */
  get writable(): boolean {
    return this.state === "open" && !this.socket.writableNeedDrain;
  }

  /** Bytes written but not yet taken by the kernel. */
  get writeBufferedBytes(): number {
    return this.socket.writableLength;
  }

  /**
   * Sends one message; returns false when the caller should wait for `drain`. The socket
   * holds `payload` until written: the caller must not write to it again.
   */
  send(payload: Uint8Array): boolean {
    return this.sendBatch([payload], 1);
  }

  /**
   * Sends `payloads[0..count)` as consecutive frames; returns false when the caller
   * should wait for `drain`. Small payloads are copied with their headers into one
   * buffer per run (one write); larger ones are written by reference after their header,
   * so the socket holds them until written: the caller must not write to them again.
   */
  sendBatch(payloads: readonly Uint8Array[], count: number): boolean {
    assert(this.state === "open", "send only on an open connection");
    assert(count >= 1 && count <= payloads.length, "a batch of at least one message");
    const key = this.keySend;
    assert(key !== null, "open connections have a send key");
    const socket = this.socket;
    // More than one write (several runs, or a large payload after its header) leave in
    // one writev when corked.
    const corked = count > 1 || payloads[0]!.length > framePayloadCopySizeMax;
    if (corked) socket.cork();
    let accepted = true;
    let index = 0;
    while (index < count) {
      let runEnd = index;
      let runBytes = 0;
      for (; runEnd < count; runEnd++) {
        const size = payloads[runEnd]!.length;
        assert(size <= this.options.frameSizeMax, "payload within the frame size limit");
        if (size > framePayloadCopySizeMax) break;
        runBytes += frameHeaderSize + size;
      }
      if (runEnd > index) {
        // A run of small frames: headers and payloads in one buffer, one write.
        const buffer = new Uint8Array(runBytes);
        let at = 0;
        for (; index < runEnd; index++) {
          const payload = payloads[index]!;
          encodeFrameHeaderInto(buffer, at, FrameKind.message, this.sequenceSend++, payload, key);
          buffer.set(payload, at + frameHeaderSize);
          at += frameHeaderSize + payload.length;
        }
        assert(at === runBytes, "the run filled its buffer");
        accepted = socket.write(buffer);
        this.counters.bytesOut += runBytes;
        continue;
      }
      // One large payload, by reference after its own header.
      const payload = payloads[index++]!;
      const header = new Uint8Array(frameHeaderSize);
      encodeFrameHeaderInto(header, 0, FrameKind.message, this.sequenceSend++, payload, key);
      socket.write(header);
      accepted = socket.write(payload);
      this.counters.bytesOut += frameHeaderSize + payload.length;
    }
    this.counters.framesOut += count;
    if (corked) socket.uncork();
    return accepted;
  }

  /** Closes without a fault (shutdown, or replaced by a newer connection). */
  destroy(): void {
    this.close(null, "closed locally");
  }

  private sendHandshake(kind: FrameKind, payload: Uint8Array): void {
    const frame = encodeFrame(kind, 0, payload, null);
    this.counters.bytesOut += frame.length;
    this.socket.write(frame);
  }

  private sendHello(): void {
    assert(this.remote !== null, "hello names its receiver");
    this.sendHandshake(FrameKind.hello, encodeHello({
      cluster: this.options.cluster,
      from: this.options.local,
      to: this.remote,
      role: this.options.role,
      nonce: this.nonceLocal,
    }));
  }

  private noncePair(): [Uint8Array, Uint8Array] {
    assert(this.nonceRemote !== null, "both nonces known");
    return this.options.role === "dialer"
      ? [this.nonceLocal, this.nonceRemote]
      : [this.nonceRemote, this.nonceLocal];
  }

  private onData(chunk: Uint8Array): void {
    if (this.state === "closed") return;
    this.counters.bytesIn += chunk.length;
    this.received.push(chunk);
    while ((this.state as State) !== "closed") {
      if (this.headerPending === null) {
        if (this.received.length < frameHeaderSize) return;
        const sizeMax = this.state === "open" ? this.options.frameSizeMax : handshakePayloadSizeMax;
        const header = decodeFrameHeader(this.received.peek(frameHeaderSize), sizeMax);
        if (header === "garbage") return this.drop("garbage", "not a chronon bus frame");
        if (header === "oversized") return this.drop("oversized", `frame larger than ${sizeMax} bytes`);
        this.headerPending = header;
      }
      const frameSize = frameHeaderSize + this.headerPending.payloadSize;
      if (this.received.length < frameSize) return;
      const header = this.headerPending;
      this.headerPending = null;
      // The header may be a view into a received chunk (never written again); the payload
      // is read into a buffer of its own, the one copy the message handler then keeps.
      const headerBytes = this.received.read(frameHeaderSize);
      this.onFrame(header, headerBytes, this.received.readFresh(header.payloadSize));
    }
  }

  private onFrame(header: FrameHeader, headerBytes: Uint8Array, payload: Uint8Array): void {
    if (header.kind === FrameKind.message) {
      if (this.state !== "open") return this.drop("protocol", "message before the handshake completed");
      const fault = verifyFrameParts(headerBytes, payload, this.keyReceive);
      if (fault !== null) return this.drop(fault, `message frame ${header.sequence}`);
      if (header.sequence !== this.sequenceReceive) {
        return this.drop("replayed", `sequence ${header.sequence}, expected ${this.sequenceReceive}`);
      }
      this.sequenceReceive += 1;
      this.counters.framesIn += 1;
      this.events.message(this, payload);
      return;
    }
    const fault = verifyFrameParts(headerBytes, payload, null);
    if (fault !== null) return this.drop(fault, "handshake frame");
    if (header.kind === FrameKind.hello) return this.onHello(payload);
    return this.onProof(payload);
  }

  private onHello(payload: Uint8Array): void {
    if (this.state !== "hello") return this.drop("protocol", "second hello");
    const hello = decodeHello(payload);
    if (hello === null) return this.drop("garbage", "malformed hello");
    if (!constantTimeEqual(hello.cluster, this.options.cluster)) return this.drop("wrong_cluster", "hello from another cluster");
    if (hello.role === this.options.role) return this.drop("protocol", `both ends are ${hello.role}s`);
    if (hello.to !== this.options.local) return this.drop("unknown_peer", `hello addressed to replica ${hello.to}`);
    const { local, replicaCount, role } = this.options;
    if (role === "dialer") {
      if (hello.from !== this.remote) return this.drop("unknown_peer", `dialed replica ${this.remote}, replica ${hello.from} answered`);
    } else {
      // Only the lower index dials, so one connection serves each pair.
      if (hello.from >= replicaCount || hello.from >= local) {
        return this.drop("unknown_peer", `replica ${hello.from} may not dial replica ${local}`);
      }
      this.remote = hello.from;
      this.nonceRemote = hello.nonce;
      this.sendHello();
    }
    this.nonceRemote = hello.nonce;
    const [nonceDialer, nonceAcceptor] = this.noncePair();
    const proof = proofCompute(this.options.secret, this.options.cluster, local, hello.from, role, nonceDialer, nonceAcceptor);
    this.sendHandshake(FrameKind.proof, proof);
    this.state = "proof";
  }

  private onProof(payload: Uint8Array): void {
    if (this.state !== "proof") return this.drop("protocol", "proof before hello");
    assert(this.remote !== null, "the peer is named in the proof state");
    const [nonceDialer, nonceAcceptor] = this.noncePair();
    const { secret, cluster, local } = this.options;
    const roleRemote: Role = this.options.role === "dialer" ? "acceptor" : "dialer";
    const expected = proofCompute(secret, cluster, this.remote, local, roleRemote, nonceDialer, nonceAcceptor);
    if (!constantTimeEqual(payload, expected)) return this.drop("bad_secret", "proof does not verify");
    // Prepared once per connection: a frame's MAC then costs two SHA-256 compressions.
    this.keySend = new HmacSha256(keyDerive(secret, cluster, local, this.remote, nonceDialer, nonceAcceptor));
    this.keyReceive = new HmacSha256(keyDerive(secret, cluster, this.remote, local, nonceDialer, nonceAcceptor));
    this.state = "open";
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.counters.handshakesCompleted += 1;
    this.events.open(this);
  }

  private drop(reason: DropReason, detail: string): void {
    if (this.state === "closed") return;
    this.counters.connectionsDropped[reason] += 1;
    this.close(reason, detail);
  }

  private close(reason: DropReason | null, detail: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.received.clear();
    this.socket.destroy();
    this.events.close(this, reason, detail);
  }
}
