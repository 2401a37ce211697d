/**
 * The demo's durable bank node, until replication lands: one process that orders bank
 * transfers into the real journal (hash chain, group commit, fdatasync), applies each
 * durable entry to the real kernel executor, acknowledges it on stdout, and runs the real
 * effect runner against the webhook sink, committing each effect's outcome through the
 * journal like any other entry.
 *
 * On start it recovers: opens the data dir, replays every journaled entry into a fresh
 * executor, and the effect runner re-executes every effect whose outcome had not been
 * journaled before the crash, with the same id.
 *
 * Protocol on stdout, one line each: `ack OP` (durable and applied), `ready OP` (the head
 * after recovery), and on
 * stdin a line `drain` asks it to stop issuing transfers, wait for the outbox to empty, and
 * print `report JSON`.
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { encodeEntry, entryHeaderSize } from "../../codec/entry_header.ts";
import { decodeReply, encodeEvent, operationEvent } from "../../app/wire.ts";
import { decodeValue } from "../../app/value_codec.ts";
import { Executor } from "../../kernel/executor.ts";
import { EffectRunner } from "../../kernel/effect_runner.ts";
import { formatDataDir, openDataDir } from "../../storage/data_dir.ts";
import { selectDisk } from "../../storage/disk_select.ts";
import { assert } from "../../assert.ts";
import bank from "../../../examples/bank.ts";

const cluster = new Uint8Array(16).fill(0xd3);
const zeroClient = new Uint8Array(16);
const demoClient = new Uint8Array(16).fill(1);

/** Runs the node in `dir`, sending webhooks to `sinkUrl`; never returns while running. */
export async function runSingleNode(dir: string, sinkUrl: string, accounts: number): Promise<void> {
  const disk = await selectDisk("auto", () => {});
  if (!(await disk.exists(`${dir}/identity`))) await formatDataDir(disk, dir, { cluster, replica: 0, replicaCount: 1 });
  const dataDir = await openDataDir(disk, dir, { cluster });
  const journal = dataDir.journal;
  assert(journal.faultyOps().length === 0, "the demo's journal has no faults");
  const executor = new Executor(bank);
  // Ops of the transfers that committed successfully: each must notify the sink once.
  const transferOps: number[] = [];
  const rejections = new Map<string, number>();
  const note = (entryOp: number, body: Uint8Array, reply: Uint8Array): void => {
    const event = decodeValue(body) as [number, { type?: string }] | unknown;
    const result = decodeReply(reply);
    if (!Array.isArray(event) || (event[1] as { type?: string })?.type !== "transfer") return;
    if (result.ok) transferOps.push(entryOp);
    else rejections.set(result.code, (rejections.get(result.code) ?? 0) + 1);
  };
  for (let op = 1; op <= journal.opHead; op++) {
    const read = await journal.read(op);
    assert(read.ok, `op ${op} readable`);
    const h = new DataView(read.header.buffer, read.header.byteOffset, entryHeaderSize);
    const operation = h.getUint16(116, true);
    const reply = executor.commit({
      op,
      view: h.getUint32(104, true),
      timestamp: h.getUint32(96, true) + h.getUint32(100, true) * 2 ** 32,
      client: read.header.slice(64, 80),
      request: h.getUint32(108, true),
      operation,
      body: read.body,
      checksum: read.header.slice(0, 16),
    });
    if (operation === operationEvent) note(op, read.body, reply);
  }
  let parent = journal.headChecksum;
  assert(parent !== null, "the head is readable");
  let op = journal.opHead;
  let lastTimestamp = 0;
  console.log(`ready ${op}`);

  /** Orders one entry into the log; resolves with its reply once durable and applied. */
  const order = (operation: number, client: Uint8Array, body: Uint8Array): Promise<number> => {
    op += 1;
    lastTimestamp = Math.max(Date.now(), lastTimestamp + 1);
    const entryOp = op;
    const header = encodeEntry({ parent: parent!, cluster, client, op: entryOp, commit: entryOp - 1, timestamp: lastTimestamp, view: 1, request: 0, operation }, body);
    parent = header.slice(0, 16);
    const timestamp = lastTimestamp;
    return journal.append(header, body).then(() => {
      const reply = executor.commit({ op: entryOp, view: 1, timestamp, client, request: 0, operation, body, checksum: header.slice(0, 16) });
      if (operation === operationEvent) note(entryOp, body, reply);
      return entryOp;
    });
  };

  const runner = new EffectRunner({
    executor,
    view: 1,
    isPrimary: () => true,
    submit: async (operation, body) => {
      await order(operation, zeroClient, body);
    },
    backoffBaseMs: 50,
  });
  runner.start();

  const names = Array.from({ length: accounts }, (_, i) => `acct-${i}`);
  if (executor.op === 0) {
    await order(operationEvent, demoClient, encodeEvent({ type: "configure", webhookUrl: sinkUrl }));
    for (const account of names) {
      await order(operationEvent, demoClient, encodeEvent({ type: "open", account }));
      await order(operationEvent, demoClient, encodeEvent({ type: "deposit", account, amount: 1_000_000 }));
    }
  } else {
    // The sink moved (a new process); later transfers notify the new one.
    await order(operationEvent, demoClient, encodeEvent({ type: "configure", webhookUrl: sinkUrl }));
  }
  runner.wake();

  let draining = false;
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.trim() === "drain") draining = true;
  });
  let seed = (op * 2654435761) >>> 0 || 1;
  const inFlightMax = 32;
  let inFlight = 0;
  while (!draining) {
    if (inFlight >= inFlightMax) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      continue;
    }
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    const from = names[(seed >>> 4) % names.length]!;
    const to = names[(seed >>> 12) % names.length]!;
    if (from === to) continue;
    inFlight++;
    void order(operationEvent, demoClient, encodeEvent({ type: "transfer", from, to, amount: 1 + (seed % 500) })).then((acked) => {
      inFlight--;
      runner.wake();
      console.log(`ack ${acked}`);
    });
    if (op % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  for (let i = 0; i < 600 && executor.outboxSize > 0; i++) {
    runner.wake();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const total = executor.app.query(executor.state, { type: "total" });
  console.log(`report ${JSON.stringify({ op, outbox: executor.outboxSize, total, transferOps, rejections: Object.fromEntries(rejections) })}`);
  runner.stop();
  await dataDir.close();
  await disk.close();
}
