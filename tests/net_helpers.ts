// Test helpers for the replica bus: free ports, polling, and a raw peer that speaks the
// protocol by hand (with any secret) so tests can play a faulty or hostile process.
import { createServer, connect } from "node:net";
import type { Socket } from "node:net";
import { Bus } from "../src/net/bus.ts";
import type { BusOptions } from "../src/net/bus.ts";
import { decodeFrameHeader, encodeFrame, FrameKind, frameHeaderSize } from "../src/net/frame.ts";
import { decodeHello, encodeHello, keyDerive, nonceNew, proofCompute } from "../src/net/handshake.ts";

export const cluster = new Uint8Array(16).fill(7);
export const secret = "correct horse battery staple 42";

/** Ports that were free a moment ago on 127.0.0.1. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => resolve(server));
  })));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** Polls `condition` every 5 ms until it holds, or throws naming `what`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Received messages of one bus, as [from, text]. */
export interface Inbox { readonly messages: [number, string][] }

/** Builds `count` buses on 127.0.0.1 (not started), each with an inbox and a log. */
export function busesNew(ports: number[], overrides: Partial<BusOptions> = {}) {
  const addresses = ports.map((port) => ({ host: "127.0.0.1", port }));
  return ports.map((_, replica) => {
    const logs: string[] = [];
    const inbox: Inbox = { messages: [] };
    const bus = new Bus({
      cluster, replica, addresses, secret,
      reconnectDelayMsMin: 10, reconnectDelayMsMax: 100, handshakeTimeoutMs: 500,
      log: (line) => logs.push(line),
      ...overrides,
    });
    bus.onMessage((from, bytes) => inbox.messages.push([from, new TextDecoder().decode(bytes)]));
    return { bus, inbox, logs, replica };
  });
}

export const text = (s: string) => new TextEncoder().encode(s);

/** A socket with a frame reader, for hand-driven protocol tests. */
export class RawPeer {
  private buffered = new Uint8Array(0);
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Uint8Array) => {
      const next = new Uint8Array(this.buffered.length + chunk.length);
      next.set(this.buffered);
      next.set(chunk, this.buffered.length);
      this.buffered = next;
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }
  static async connect(port: number): Promise<RawPeer> {
    const socket = connect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    return new RawPeer(socket);
  }
  private wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
  /** The next whole frame (header + payload), or null when the socket closed. */
  async frame(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.buffered.length >= frameHeaderSize) {
        const header = decodeFrameHeader(this.buffered, 1 << 30);
        if (typeof header === "string") throw new Error(`raw peer read ${header}`);
        const size = frameHeaderSize + header.payloadSize;
        if (this.buffered.length >= size) {
          const frame = this.buffered.slice(0, size);
          this.buffered = this.buffered.slice(size);
          return frame;
        }
      }
      if (this.closed) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
  /** Resolves once the other end has closed the socket. */
  async closedByPeer(timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.closed;
  }
  write(bytes: Uint8Array) {
    this.socket.write(bytes);
  }
  destroy() {
    this.socket.destroy();
  }
}

/**
 * Connects to a bus as replica `from` (a dialer) and runs the handshake with the given
 * secret and cluster. Returns the peer and its send key, or the peer after the bus hung up.
 */
export async function rawDial(port: number, from: number, to: number, options: { secret?: string; cluster?: Uint8Array } = {}) {
  const peer = await RawPeer.connect(port);
  const secretBytes = text(options.secret ?? secret);
  const clusterId = options.cluster ?? cluster;
  const nonceDialer = nonceNew();
  peer.write(encodeFrame(FrameKind.hello, 0, encodeHello({ cluster: clusterId, from, to, role: "dialer", nonce: nonceDialer }), null));
  const helloFrame = await peer.frame();
  if (helloFrame === null) return { peer, keySend: null };
  const hello = decodeHello(helloFrame.subarray(frameHeaderSize));
  if (hello === null) throw new Error("bus sent a malformed hello");
  peer.write(encodeFrame(FrameKind.proof, 0, proofCompute(secretBytes, clusterId, from, to, "dialer", nonceDialer, hello.nonce), null));
  const proofFrame = await peer.frame();
  if (proofFrame === null) return { peer, keySend: null };
  return { peer, keySend: keyDerive(secretBytes, clusterId, from, to, nonceDialer, hello.nonce) };
}
