import { describe, test } from "node:test";
import { encode as cborEncode } from "cborg";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { compareClaims, quorumOp, quorumSize, winningClaim } from "../src/vsr/quorum.ts";
import { decodeMessage, encodeMessage, ForeignClusterError, MessageError, type Message } from "../src/vsr/message.ts";
import { ClientTable, clientKey, sessionKey } from "../src/vsr/client_table.ts";
import { encodeEntry, rootEntry } from "../src/codec/entry_header.ts";
import { checksum } from "../src/codec/checksum.ts";

const cluster = new Uint8Array(16).fill(3);

describe("vsr quorum", () => {
  test("quorum sizes for 2f+1", () => {
    assert.deepEqual([1, 3, 5, 7].map(quorumSize), [1, 2, 3, 4]);
    assert.throws(() => quorumSize(4));
  });

  test("quorumOp equals a naive count over every candidate op", () => {
    let seed = 7;
    const rand = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
    for (let i = 0; i < 500; i++) {
      const n = [1, 3, 5][rand(3)]!;
      const acks = Array.from({ length: n }, () => rand(10) - 1);
      const q = quorumSize(n);
      let naive = -1;
      for (let op = -1; op < 10; op++) if (acks.filter((a) => a >= op).length >= q) naive = op;
      assert.equal(quorumOp(acks, q), naive, JSON.stringify(acks));
    }
  });

  test("the view-change decision table: log_view first, then op, never simply the longest", () => {
    const rows: [number, number, number, number, "a" | "b"][] = [
      // a.logView, a.op, b.logView, b.op, winner
      [2, 5, 1, 9, "a"], // higher log_view wins over a longer old log
      [1, 9, 2, 5, "b"],
      [2, 7, 2, 5, "a"], // same log_view: higher op
      [2, 5, 2, 7, "b"],
      [2, 5, 2, 5, "a"], // identical: lower replica index
    ];
    for (const [alv, aop, blv, bop, want] of rows) {
      const a = { replica: 0, logView: alv, op: aop };
      const b = { replica: 1, logView: blv, op: bop };
      assert.equal(winningClaim([a, b]) === a ? "a" : "b", want, JSON.stringify([a, b]));
      assert.equal(winningClaim([b, a]) === a ? "a" : "b", want);
      assert.equal(Math.sign(compareClaims(a, b)), -Math.sign(compareClaims(b, a)));
    }
  });
});

describe("vsr messages", () => {
  const envelope = { cluster, replica: 2, view: 7, commit: 12 };
  const entry = encodeEntry({
    parent: checksum(rootEntry(cluster)).fill(0), cluster, client: new Uint8Array(16), op: 1, commit: 0, timestamp: 5,
    view: 1, request: 0, operation: 16,
  }, new Uint8Array([1, 2, 3]));
  const samples: Message[] = [
    { ...envelope, kind: "prepare", entries: [{ header: entry, body: new Uint8Array([1, 2, 3]) }] },
    { ...envelope, kind: "prepare_ok", op: 4, checksum: new Uint8Array(16).fill(1) },
    { ...envelope, kind: "commit", commitChecksum: new Uint8Array(16), checkpointOp: 3 },
    { ...envelope, kind: "start_view_change" },
    { ...envelope, kind: "do_view_change", logView: 6, op: 1, checkpointOp: 0, headers: [entry], nacks: [1] },
    { ...envelope, kind: "start_view", op: 1, checkpointOp: 0, headers: [entry] },
    { ...envelope, kind: "request_start_view" },
    { ...envelope, kind: "request_prepare", op: 1, checksum: entry.subarray(0, 16).slice() },
    { ...envelope, kind: "entry", entry: { header: entry, body: new Uint8Array([1, 2, 3]) } },
    { ...envelope, kind: "ping", nonce: 9 },
    { ...envelope, kind: "pong", nonce: 9 },
    { ...envelope, kind: "request_checkpoint", op: 8, offset: 0 },
    { ...envelope, kind: "checkpoint_chunk", op: 8, checksum: new Uint8Array(16), size: 3, offset: 0, bytes: new Uint8Array(3) },
  ];

  test("every kind round-trips", () => {
    for (const message of samples) assert.deepEqual(decodeMessage(encodeMessage(message), cluster), message, message.kind);
  });

  test("every single-bit flip is rejected with a typed error", () => {
    for (const message of samples) {
      const bytes = encodeMessage(message);
      for (let bit = 0; bit < bytes.length * 8; bit += 7) {
        const copy = bytes.slice();
        copy[bit >> 3]! ^= 1 << (bit & 7);
        assert.throws(() => decodeMessage(copy, cluster), (e: unknown) => e instanceof MessageError || e instanceof ForeignClusterError);
      }
    }
  });

  test("another cluster's message is named as such", () => {
    const bytes = encodeMessage(samples[3]!);
    assert.throws(() => decodeMessage(bytes, new Uint8Array(16)), ForeignClusterError);
  });
});

describe("vsr control bodies written by hand", () => {
  const counts = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
  const sum = Uint8Array.from({ length: 16 }, (_, i) => i * 11 + 1);
  const envelope = { cluster: new Uint8Array(16).fill(7), replica: 1, view: 3, commit: 9 };
  test("prepare_ok, request_prepare and commit are byte for byte what cborg writes, and decode back", () => {
    for (const n of counts) {
      for (const kind of ["prepare_ok", "request_prepare"] as const) {
        const bytes = encodeMessage({ ...envelope, kind, op: n, checksum: sum });
        assert.deepEqual(bytes.subarray(64), new Uint8Array(cborEncode({ op: n, checksum: sum })), `${kind} op ${n}`);
        const back = decodeMessage(bytes, envelope.cluster);
        assert.equal(back.kind, kind);
        assert.equal((back as { op: number }).op, n);
        assert.deepEqual((back as { checksum: Uint8Array }).checksum, sum);
      }
      const commit = encodeMessage({ ...envelope, kind: "commit", commitChecksum: sum, checkpointOp: n });
      assert.deepEqual(commit.subarray(64), new Uint8Array(cborEncode({ commitChecksum: sum, checkpointOp: n })), `commit ${n}`);
      const back = decodeMessage(commit, envelope.cluster) as { checkpointOp: number; commitChecksum: Uint8Array };
      assert.equal(back.checkpointOp, n);
      assert.deepEqual(back.commitChecksum, sum);
    }
  });

  test("other encodings of the same bodies still decode, and malformed ones are refused", () => {
    // A non-shortest count (cborg would not write it), keys in the other order, an extra key:
    // the fast path declines and the general decoder decides.
    const withBody = (body: Uint8Array) => {
      const bytes = encodeMessage({ ...envelope, kind: "prepare_ok", op: 5, checksum: sum });
      const out = new Uint8Array(64 + body.length);
      out.set(bytes.subarray(0, 64));
      out.set(body, 64);
      new DataView(out.buffer).setUint32(40, body.length, true);
      out.set(checksum(out.subarray(16)), 0);
      return out;
    };
    const long = Uint8Array.from([0xa2, 0x62, 0x6f, 0x70, 0x19, 0x00, 0x05, 0x68, ...Array.from("checksum", (c) => c.charCodeAt(0)), 0x50, ...sum]);
    assert.equal((decodeMessage(withBody(long), envelope.cluster) as { op: number }).op, 5);
    const swapped = Uint8Array.from([0xa2, 0x68, ...Array.from("checksum", (c) => c.charCodeAt(0)), 0x50, ...sum, 0x62, 0x6f, 0x70, 0x05]);
    assert.equal((decodeMessage(withBody(swapped), envelope.cluster) as { op: number }).op, 5);
    const short = long.subarray(0, long.length - 1);
    assert.throws(() => decodeMessage(withBody(short), envelope.cluster), MessageError);
    const wrongSize = new Uint8Array(cborEncode({ op: 5, checksum: new Uint8Array(15) }));
    assert.throws(() => decodeMessage(withBody(wrongSize), envelope.cluster), MessageError);
  });
});

describe("vsr client table", () => {
  test("an evicted id is kept as its lowercase hex, two digits per byte", () => {
    const id = Uint8Array.from({ length: 16 }, (_, i) => (i * 17 + 5) & 0xff);
    assert.equal(clientKey(id), Array.from(id, (b) => b.toString(16).padStart(2, "0")).join(""));
    assert.equal(clientKey(new Uint8Array([0, 1, 0xab, 0xff])), "0001abff");
  });

  test("session keys are distinct per id and sort as the ids' bytes do (checkpoints sort by them)", () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    const ids = Array.from({ length: 400 }, () => Uint8Array.from({ length: 16 }, next));
    ids.push(new Uint8Array(16), new Uint8Array(16).fill(0xff), Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? 1 : 0)));
    const byHex = [...ids].sort((a, b) => (clientKey(a) < clientKey(b) ? -1 : clientKey(a) > clientKey(b) ? 1 : 0));
    const byKey = [...ids].sort((a, b) => (sessionKey(a) < sessionKey(b) ? -1 : sessionKey(a) > sessionKey(b) ? 1 : 0));
    assert.deepEqual(byKey.map(clientKey), byHex.map(clientKey));
    assert.equal(new Set(ids.map(sessionKey)).size, new Set(ids.map(clientKey)).size);
    assert.equal(sessionKey(ids[0]!).length, 8);
  });

  test("evicts the least recently committed session and remembers it", () => {
    const table = new ClientTable(2);
    const id = (n: number) => new Uint8Array(16).fill(n);
    table.register(id(1), 1);
    table.register(id(2), 2);
    table.record(id(1), 1, 3, { body: new Uint8Array([1]) });
    table.register(id(3), 4); // evicts 2: committed least recently
    assert.equal(table.check(id(2), 1).kind, "error");
    assert.deepEqual(table.check(id(2), 1), { kind: "error", error: "session_evicted", message: "session was evicted: register again" });
    assert.equal(table.check(id(1), 1).kind, "duplicate");
    assert.equal(table.check(id(1), 2).kind, "new");
    const copy = new ClientTable(2);
    copy.restore(table.encode());
    assert.deepEqual(copy.encode(), table.encode());
  });
});

describe("vsr purity", () => {
  test("src/vsr never touches clocks, timers, randomness, the process or I/O", () => {
    const dir = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..", "src", "vsr");
    const forbidden = /\b(Date|setTimeout|setInterval|Math\.random|performance|process|Deno|Bun)\b|node:fs|node:net/;
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    assert.ok(files.length >= 8, `found ${files.length} files`);
    for (const file of files) {
      const lines = readFileSync(join(dir, file), "utf8").split("\n");
      lines.forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, "");
        assert.ok(!forbidden.test(code), `${file}:${i + 1}: ${line.trim()}`);
      });
    }
  });
});
