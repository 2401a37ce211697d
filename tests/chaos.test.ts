import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer } from "node:net";
import process from "node:process";
import type { Server, Socket } from "node:net";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LinkProxy } from "../src/chaos/proxy.ts";
import { ChannelFollower } from "../src/chaos/channel_follower.ts";
import { createServer as createHttpServer } from "node:http";
import { faultyDisk } from "../src/chaos/disk_faults.ts";
import type { DiskFaultSettings } from "../src/chaos/disk_faults.ts";
import { findLostWrites, percentile, unavailabilityByKind } from "../src/chaos/checks.ts";
import { flipJournalBits } from "../src/chaos/bit_flip.ts";
import { HistoryRecorder } from "../src/chaos/workload_kv.ts";
import type { KvHistoryEvent } from "../src/chaos/workload_kv.ts";
import type { FaultRecord } from "../src/chaos/nemesis.ts";
import { OutcomeUnknownError, RejectedError } from "../src/client/errors.ts";
import { check, kv, operationsFromEvents, parseKvEdn, writeKvEdn } from "../src/sim/lincheck/mod.ts";
import { MemoryDisk } from "../src/storage/disk_memory.ts";
import { DiskError } from "../src/storage/disk.ts";
import { testFaultsFromEnv, testFaultsEnv } from "../src/node/test_faults.ts";
import { segmentHeaderSize } from "../src/storage/segment.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** An echo-like server that records what it received and can send to its peer. */
async function recordingServer(): Promise<{ server: Server; port: number; received: () => string; sockets: Socket[] }> {
  let text = "";
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on("data", (chunk: Uint8Array) => {
      text += new TextDecoder().decode(chunk);
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return { server, port: address.port, received: () => text, sockets };
}

async function dial(port: number): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  let text = "";
  let closed = false;
  const socket = connect(port, "127.0.0.1");
  socket.on("data", (chunk: Uint8Array) => {
    text += new TextDecoder().decode(chunk);
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    closed = true;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return { socket, received: () => text, closed: () => closed };
}

async function until(what: string, probe: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe("chaos link proxy", () => {
  test("one-way cut holds one direction, the other flows, healing delivers what was held", async () => {
    const target = await recordingServer();
    const proxy = new LinkProxy("127.0.0.1", target.port);
    const port = await proxy.start("127.0.0.1");
    try {
      const client = await dial(port);
      client.socket.write("a");
      await until("forward bytes", () => target.received() === "a");
      proxy.set({ forward: false, backward: true });
      client.socket.write("b");
      target.sockets[0]!.write("x");
      await until("backward bytes", () => client.received() === "x");
      await sleep(100);
      assert.equal(target.received(), "a", "nothing crosses the cut direction");
      proxy.set({ forward: true, backward: true });
      await until("held bytes after healing", () => target.received() === "ab");
      client.socket.destroy();
    } finally {
      await proxy.close();
      target.server.close();
    }
  });

  test("a delayed link delivers every chunk late and in order, both ways", async () => {
    const target = await recordingServer();
    const proxy = new LinkProxy("127.0.0.1", target.port);
    const port = await proxy.start("127.0.0.1");
    try {
      const client = await dial(port);
      client.socket.write("0");
      await until("the connection to carry bytes", () => target.received() === "0");
      proxy.set({ forward: true, backward: true, delayMs: 150 });
      const sentAt = performance.now();
      for (const c of "123456789") client.socket.write(c);
      await sleep(60);
      assert.equal(target.received(), "0", "nothing arrives before the delay");
      await until("delayed bytes", () => target.received() === "0123456789");
      assert.ok(performance.now() - sentAt >= 140, "arrived after the delay");
      target.sockets[0]!.write("back");
      await sleep(60);
      assert.equal(client.received(), "", "the backward direction is delayed too");
      await until("delayed backward bytes", () => client.received() === "back");
      assert.throws(() => proxy.set({ forward: true, backward: true, delayMs: -1 }));
      client.socket.destroy();
    } finally {
      await proxy.close();
      target.server.close();
    }
  });

  test("a symmetric cut drops open connections and refuses new ones until healed", async () => {
    const target = await recordingServer();
    const proxy = new LinkProxy("127.0.0.1", target.port);
    const port = await proxy.start("127.0.0.1");
    try {
      const client = await dial(port);
      proxy.set({ forward: false, backward: false });
      await until("the open connection to close", () => client.closed());
      const refused = await dial(port);
      await until("the new connection to be closed", () => refused.closed());
      assert.equal(proxy.refused, 1);
      proxy.set({ forward: true, backward: true });
      const healed = await dial(port);
      healed.socket.write("after");
      await until("bytes after healing", () => target.received() === "after");
      healed.socket.destroy();
    } finally {
      await proxy.close();
      target.server.close();
    }
  });
});

describe("chaos disk faults", () => {
  const setup = async (settings: DiskFaultSettings) => {
    const inner = new MemoryDisk();
    await inner.mkdir("/d");
    let current = settings;
    const disk = faultyDisk(inner, () => current, () => 0.5);
    const file = await disk.open("/d/f", { create: true });
    return { inner, disk, file, set: (s: DiskFaultSettings) => (current = s) };
  };

  test("fdatasync fails with EIO while armed, and works again when disarmed", async () => {
    const { file, set } = await setup({ syncEioProbability: 1, tornWriteDelayMs: 0 });
    await assert.rejects(file.write(0, [new Uint8Array([1, 2])], { sync: true }), (e: unknown) => e instanceof DiskError && e.code === "EIO");
    await assert.rejects(file.sync(), (e: unknown) => e instanceof DiskError && e.code === "EIO");
    // An unsynced write is not a barrier: it is not failed.
    await file.write(0, [new Uint8Array([9])], { sync: false });
    set({ syncEioProbability: 0, tornWriteDelayMs: 0 });
    await file.write(0, [new Uint8Array([1, 2])], { sync: true });
    assert.deepEqual([...await file.read(0, 2)], [1, 2]);
  });

  test("a torn write leaves its first half in the file during the pause, all of it after", async () => {
    const { file } = await setup({ syncEioProbability: 0, tornWriteDelayMs: 80 });
    const writing = file.write(0, [new Uint8Array([1, 2]), new Uint8Array([3, 4])], { sync: true });
    await sleep(30);
    assert.equal(await file.size(), 2, "only the first half is there mid-write");
    await writing;
    assert.deepEqual([...await file.read(0, 4)], [1, 2, 3, 4]);
  });

  test("the node's hooks are inert without the variable: same disk, unskewed clock", async () => {
    const saved = process.env[testFaultsEnv];
    delete process.env[testFaultsEnv];
    try {
      const lines: string[] = [];
      const faults = testFaultsFromEnv((line) => lines.push(line));
      assert.equal(faults.active, false);
      const disk = new MemoryDisk();
      assert.equal(await faults.wrapDisk(disk), disk);
      assert.ok(Math.abs(faults.nowMs() - Date.now()) < 1000);
      assert.deepEqual(lines, []);
    } finally {
      if (saved !== undefined) process.env[testFaultsEnv] = saved;
    }
  });

  test("with the variable set: a loud warning, skew and state report from the control file", () => {
    const dir = mkdtempSync(join(tmpdir(), "chronon-faults-"));
    const saved = process.env[testFaultsEnv];
    const control = join(dir, "faults.json");
    writeFileSync(control, JSON.stringify({ clockSkewMs: -3_600_000, syncEioProbability: 0, tornWriteDelayMs: 0 }));
    process.env[testFaultsEnv] = control;
    try {
      const lines: string[] = [];
      const faults = testFaultsFromEnv((line) => lines.push(line));
      assert.equal(faults.active, true);
      assert.match(lines.join("\n"), /WARNING: .*TEST-ONLY fault injection/);
      assert.ok(Math.abs(faults.nowMs() - (Date.now() - 3_600_000)) < 1000);
      faults.tick({ status: "normal", view: 3, op: 10, commit: 9, primary: 0 } as never, () => new Uint8Array([0xab, 0x01]));
      const report = JSON.parse(readFileSync(`${control}.state.json`, "utf8")) as { commit: number; stateHash: string };
      assert.equal(report.commit, 9);
      assert.equal(report.stateHash, "ab01");
    } finally {
      if (saved === undefined) delete process.env[testFaultsEnv];
      else process.env[testFaultsEnv] = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bit flips land in the settled part of a segment, never in its header or tail", () => {
    const dir = mkdtempSync(join(tmpdir(), "chronon-flip-"));
    try {
      const size = 256 * 1024;
      const original = new Uint8Array(size);
      const journal = join(dir, "journal");
      mkdirSync(journal, { recursive: true });
      writeFileSync(join(journal, "00000001.segment"), original);
      let r = 0;
      const flips = flipJournalBits(dir, 20, () => (r = (r * 9301 + 49297) % 233280) / 233280);
      assert.equal(flips.length, 20);
      const after = readFileSync(join(journal, "00000001.segment"));
      let changedBits = 0;
      for (let i = 0; i < size; i++) {
        if (after[i] !== 0) {
          assert.ok(i >= segmentHeaderSize && i < size * 0.75, `flip at ${i} outside the settled part`);
          changedBits += popcount(after[i]!);
        }
      }
      assert.ok(changedBits > 0 && changedBits <= 20);
      assert.deepEqual(flipJournalBits(join(dir, "missing"), 3, Math.random), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function popcount(x: number): number {
  let n = 0;
  for (let v = x; v !== 0; v >>= 1) n += v & 1;
  return n;
}

/** A history built by hand through the recorder, as the workload records it. */
async function recordedHistory(): Promise<{ recorder: HistoryRecorder; events: KvHistoryEvent[] }> {
  const recorder = new HistoryRecorder(performance.now());
  await recorder.record(0, { f: "put", key: "k0", value: "p0-0" }, () => Promise.resolve("ok"));
  await recorder.record(1, { f: "get", key: "k0" }, () => Promise.resolve("p0-0"));
  await recorder.record(2, { f: "put", key: "k1", value: "p2-0" }, () => Promise.reject(new OutcomeUnknownError("deadline", 3)));
  await recorder.record(3, { f: "put", key: "k1", value: "p3-0" }, () => Promise.reject(new RejectedError("nope")));
  await recorder.record(10, { f: "get", key: "k1" }, () => Promise.resolve("p2-0"));
  await recorder.record(0, { f: "get", key: "k1" }, () => Promise.resolve(""));
  return { recorder, events: recorder.events };
}

describe("chaos history", () => {
  test("outcomes are recorded as ok, info (unknown) and fail (definite)", async () => {
    const { recorder, events } = await recordedHistory();
    assert.deepEqual(events.map((e) => e.kind), ["invoke", "ok", "invoke", "ok", "invoke", "info", "invoke", "fail", "invoke", "ok", "invoke", "ok"]);
    assert.equal(recorder.stats.ok, 4);
    assert.equal(recorder.stats.info, 1);
    assert.equal(recorder.stats.fail, 1);
  });

  test("written in Jepsen's kv format, read back to the same operations and the same verdict", async () => {
    const { events } = await recordedHistory();
    const text = writeKvEdn(events);
    const back = parseKvEdn(text);
    const direct = operationsFromEvents(events);
    assert.equal(back.length, direct.length);
    assert.deepEqual(back.map((o) => [o.client, o.input, o.output, o.return === undefined]), direct.map((o) => [o.client, o.input, o.output, o.return === undefined]));
    // The read of "" after a read of "p2-0" by a later client: a stale read, caught both ways.
    assert.equal(check(kv, direct).kind, "not-linearizable");
    assert.equal(check(kv, back).kind, "not-linearizable");
    const fine = events.slice(0, 10);
    assert.equal(check(kv, operationsFromEvents(fine)).kind, "linearizable");
    assert.equal(check(kv, parseKvEdn(writeKvEdn(fine))).kind, "linearizable");
  });

  test("a lost acknowledged write is named; an overwritten one is not", () => {
    const put = (client: number, key: string, value: string, call: number, ret: number): KvHistoryEvent[] => [
      { kind: "invoke", client, time: call, input: { f: "put", key, value } },
      { kind: "ok", client, time: ret, output: "ok" },
    ];
    const events = [...put(0, "a", "v1", 1, 2), ...put(1, "a", "v2", 3, 4), ...put(2, "b", "w1", 1, 2)];
    assert.deepEqual(findLostWrites(events, new Map([["a", "v2"], ["b", "w1"]])), []);
    const lost = findLostWrites(events, new Map([["a", "v1"], ["b", ""]]));
    assert.deepEqual(lost.map((l) => [l.key, l.value]), [["a", "v2"], ["b", "w1"]]);
    assert.equal(findLostWrites(events, new Map([["a", "zzz"]]))[0]?.why, "the final value was never written by any client");
  });

  test("unavailability per fault kind is the longest gap between acknowledgements overlapping it", () => {
    const faults: FaultRecord[] = [
      { kind: "kill", detail: "k", startMs: 100, endMs: 300 },
      { kind: "pause", detail: "p", startMs: 1000, endMs: 1100 },
    ];
    const windows = unavailabilityByKind([0, 50, 120, 400, 450, 1000, 1300, 1310], faults);
    assert.deepEqual(windows.map((w) => [w.kind, w.ms]), [["kill", 280], ["pause", 300]]);
    assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
    assert.equal(percentile([5, 1, 3, 2, 4], 100), 5);
    assert.ok(Number.isNaN(percentile([], 50)));
  });
});

describe("chaos channel follower", () => {
  test("follows a channel past its retention, from any replica that answers, and counts what it missed", async () => {
    // A channel of `seq → op seq*10` that keeps only its latest 5 entries.
    let next = 0;
    const retention = 5;
    const server = createHttpServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://x");
      const cursor = Number(url.searchParams.get("cursor"));
      const limit = Number(url.searchParams.get("limit"));
      const first = Math.max(0, next - retention);
      const from = Math.max(cursor, first);
      const entries = [];
      for (let seq = from; seq < Math.min(next, from + limit); seq++) entries.push({ seq, payload: { op: seq * 10 } });
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ entries, first, next: from + entries.length, missed: Math.max(0, first - cursor) }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const address = server.address();
    assert.ok(address !== null && typeof address === "object");
    // The first "replica" refuses connections: the follower moves on to the next one.
    const follower = new ChannelFollower(["http://127.0.0.1:1", `http://127.0.0.1:${address.port}`], "transfers");
    try {
      next = 4;
      assert.equal(await follower.poll(), true);
      next = 8;
      assert.equal(await follower.poll(), true);
      assert.deepEqual([...follower.ops].sort((a, b) => a - b), [0, 10, 20, 30, 40, 50, 60, 70]);
      assert.equal(follower.missed, 0);
      next = 20; // 8..14 dropped before the next read
      assert.equal(await follower.poll(), true);
      assert.equal(follower.missed, 7);
      assert.equal(follower.ops.size, 13);
      assert.ok(follower.ops.has(190));
    } finally {
      server.close();
    }
  });
});
