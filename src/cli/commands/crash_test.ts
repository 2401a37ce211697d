/**
 * `chronon crash-test`: appends from a child process, SIGKILLs it at random moments, and
 * checks what recovery finds; then flips bits in closed segments and checks each flip is
 * named. See the usage text.
 * @module
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { runtimeName } from "../runtime.ts";
import { checksumEqual } from "../../codec/checksum.ts";
import { decodeHeader, encodeEntry } from "../../codec/entry_header.ts";
import { clusterIdBytes } from "../../storage/cluster_id.ts";
import { formatDataDir, openDataDir } from "../../storage/data_dir.ts";
import { directBlockBytes } from "../../storage/disk.ts";
import type { Disk } from "../../storage/disk.ts";
import { randomInt, seededRandom } from "../../storage/seeded_random.ts";
import type { Random } from "../../storage/seeded_random.ts";
import { defaultDisk, sameRuntimeCommand } from "./storage_common.ts";

const usage = `chronon crash-test [--rounds N] [--seed S] [--appenders K] [--segment-bytes B] [--flips F] [--keep]

In a temp dir: a child process (same runtime) appends entries as fast as it can with K
concurrent appenders and prints every acknowledged op; the parent SIGKILLs it at a random
moment (often in the middle of a write or an fdatasync), recovers the journal and checks:
  - every acknowledged op is present, its body is the one written, the chain verifies;
  - nothing unacknowledged is half-present (the last segment ends exactly after the head
    entry; a torn tail must have been truncated by recovery);
  - no faults.
Then it flips F random bits in closed segments, one at a time, and checks each is found
and named by op, file and offset (and that the journal verifies again once flipped back).
Rounds continue on the same journal. One summary line per round; exit 1 on any violation.

  --rounds N         kill/recover rounds (default 10)
  --seed S           seed for kill times, body sizes and bit flips (default 1)
  --appenders K      concurrent appenders in the child (default 8)
  --segment-bytes B  segment size limit, small so segments roll (default 1048576)
  --flips F          bit flips per round (default 3)
  --keep             keep the temp dir`;

const cluster = clusterIdBytes(0xc4a5_17e5_7n);
const client = new Uint8Array(16).fill(0xcc);

/** Body of `op`: size and bytes derived from the seed and the op, so the parent can check it. */
function bodyFor(seed: number, op: number): Uint8Array {
  const random = seededRandom(seed * 1_000_003 + op);
  // Mostly small entries; now and then one of up to 512 KiB, so that some batches are
  // multi-megabyte writes a SIGKILL can interrupt half way (the kernel stops a write
  // between pages when a fatal signal is pending): that is what leaves a torn tail.
  const dice = randomInt(random, 100);
  const size = dice < 2 ? 65536 + randomInt(random, 458752) : dice < 25 ? randomInt(random, 6000) : randomInt(random, 300);
  const body = new Uint8Array(size);
  const fill = randomInt(random, 256);
  for (let i = 0; i < size; i++) body[i] = (fill + i * 13 + op) & 0xff;
  return body;
}

/** The child: appends forever, printing acknowledged ops. */
async function child(path: string, seed: number, appenders: number, segmentSizeLimit: number): Promise<number> {
  const disk = await defaultDisk();
  const dir = await openDataDir(disk, path, { segmentSizeLimit });
  const journal = dir.journal;
  let next = journal.opHead + 1;
  let parent = journal.headChecksum!;
  let acked: number[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (acked.length === 0) return;
    process.stdout.write(acked.join("\n") + "\n");
    acked = [];
  };
  const appendForever = async () => {
    for (;;) {
      const op = next++;
      const body = bodyFor(seed, op);
      const header = encodeEntry({ parent, cluster, client, op, commit: 0, timestamp: op, view: 0, request: 0, operation: 16 }, body);
      parent = header.subarray(0, 16);
      await journal.append(header, body);
      acked.push(op);
      if (!scheduled) {
        scheduled = true;
        setTimeout(flush, 0);
      }
    }
  };
  await Promise.all(Array.from({ length: appenders }, appendForever));
  return 0;
}

interface RoundResult {
  readonly acked: number;
  readonly maxAcked: number;
  readonly killedAfterMs: number;
}

/** Runs the child until a random moment after its first ack, then SIGKILLs it. */
function runChild(path: string, seed: number, appenders: number, segmentBytes: number, random: Random, acked: Set<number>): Promise<RoundResult> {
  const { command, args, cwd } = sameRuntimeCommand(["crash-test", "--child", path, "--seed", String(seed), "--appenders", String(appenders), "--segment-bytes", String(segmentBytes)]);
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let buffered = "";
    let count = 0;
    let maxAcked = 0;
    let stderr = "";
    let killedAt = 0;
    let started = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    proc.stdout!.setEncoding("utf8");
    proc.stderr!.on("data", (chunk) => (stderr += String(chunk)));
    proc.stdout!.on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const op = Number(line);
        acked.add(op);
        count++;
        if (op > maxAcked) maxAcked = op;
      }
      if (timer === undefined && count > 0) {
        started = Date.now();
        timer = setTimeout(() => {
          killedAt = Date.now();
          proc.kill("SIGKILL");
        }, 30 + randomInt(random, 400));
      }
    });
    const deadline = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`child printed no ack within 30 s: ${stderr}`));
    }, 30_000);
    proc.on("close", (code, signal) => {
      clearTimeout(deadline);
      if (timer !== undefined) clearTimeout(timer);
      if (signal !== "SIGKILL" || killedAt === 0) {
        reject(new Error(`child exited by itself (code ${code}, signal ${signal}): ${stderr}`));
        return;
      }
      resolve({ acked: count, maxAcked, killedAfterMs: killedAt - started });
    });
  });
}

/** True when the `length` bytes at `offset` of `path` are all zero. */
function zeroFrom(path: string, offset: number, length: number): boolean {
  const bytes = new Uint8Array(length);
  const fd = fs.openSync(path, "r");
  try {
    fs.readSync(fd, bytes, 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
  return bytes.every((b) => b === 0);
}

/** Flips bit `bit` of byte `offset` in `path` (through node:fs: the bytes on disk, not a cache). */
function flipBit(path: string, offset: number, bit: number): void {
  const fd = fs.openSync(path, "r+");
  try {
    const byte = new Uint8Array(1);
    fs.readSync(fd, byte, 0, 1, offset);
    byte[0]! ^= 1 << bit;
    fs.writeSync(fd, byte, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

async function round(
  disk: Disk, path: string, seed: number, number: number, options: { appenders: number; segmentBytes: number; flips: number },
  random: Random, state: { verifiedHead: number },
): Promise<{ line: string; violations: string[] }> {
  const violations: string[] = [];
  const acked = new Set<number>();
  const run = await runChild(path, seed, options.appenders, options.segmentBytes, random, acked);
  const dir = await openDataDir(disk, path, { segmentSizeLimit: options.segmentBytes });
  const journal = dir.journal;
  const tear = dir.recovery.tornTail;
  for (const fault of journal.faults()) violations.push(`fault after crash: op ${fault.op} ${fault.kind} at ${fault.path}:${fault.offset} (${fault.detail})`);
  if (journal.opHead < run.maxAcked) violations.push(`acknowledged op ${run.maxAcked} lost: head is ${journal.opHead}`);
  for (const op of acked) if (op > journal.opHead) violations.push(`acknowledged op ${op} missing`);
  // Bodies of the ops new this round (older ones were checked in earlier rounds, and
  // recovery verified every checksum and chain link again).
  let previous: Uint8Array | null = null;
  for (let op = Math.max(1, state.verifiedHead); op <= journal.opHead && violations.length < 20; op++) {
    const entry = await journal.read(op);
    if (!entry.ok) {
      violations.push(`op ${op} unreadable: ${entry.fault.kind}`);
      continue;
    }
    if (!checksumEqual(entry.body, bodyFor(seed, op))) violations.push(`op ${op} holds another body than the one written`);
    const header = decodeHeader(entry.header);
    if (previous !== null && !checksumEqual(header.parent, previous)) violations.push(`op ${op} does not chain after op ${op - 1}`);
    previous = header.checksum;
  }
  const segments = journal.segments();
  const last = segments[segments.length - 1]!;
  const end = journal.opHead >= last.firstOp ? journal.locate(journal.opHead).offset + journal.locate(journal.opHead).size : 128;
  const fileSize = fs.statSync(last.path).size;
  // After the head entry: nothing, or (a direct segment) under a block of zero padding.
  const padding = fileSize > end && fileSize - end < directBlockBytes && fileSize % directBlockBytes === 0 && zeroFrom(last.path, end, fileSize - end);
  if (fileSize < end || (fileSize > end && !padding)) violations.push(`last segment is ${fileSize} bytes but the head entry ends at ${end}: a partial entry is present`);
  state.verifiedHead = journal.opHead;
  const head = journal.opHead;
  const closed = segments.slice(0, -1);
  const locations = closed.length === 0 ? [] : collectEntries(journal, closed);
  await dir.close();

  let named = 0;
  const flips = closed.length === 0 ? 0 : options.flips;
  for (let flip = 0; flip < flips; flip++) {
    const segment = closed[randomInt(random, closed.length)]!;
    const offset = randomInt(random, segment.bytes);
    const bit = randomInt(random, 8);
    const owner = locations.find((l) => l.path === segment.path && l.offset <= offset && offset < l.offset + l.size);
    flipBit(segment.path, offset, bit);
    const check = await openDataDir(disk, path, { readOnly: true, segmentSizeLimit: options.segmentBytes });
    const faults = check.journal.faults();
    await check.close();
    const expected = owner === undefined ? `segment header of ${segment.path}` : `op ${owner.op} at ${segment.path}:${owner.offset}`;
    const hit = faults.find((f) =>
      f.path === segment.path && (owner === undefined ? f.kind === "segment" && offset < 128 : f.op === owner.op && f.offset === owner.offset)
    );
    if (hit === undefined) {
      violations.push(`bit ${bit} of byte ${segment.path}:${offset} flipped (${expected}) but not named; faults: ${JSON.stringify(faults)}`);
    } else named++;
    if (faults.length !== 1) violations.push(`one flip gave ${faults.length} faults: ${JSON.stringify(faults)}`);
    flipBit(segment.path, offset, bit);
    const clean = await openDataDir(disk, path, { readOnly: true, segmentSizeLimit: options.segmentBytes });
    if (clean.journal.faults().length !== 0) violations.push(`faults remain after the flip was undone`);
    await clean.close();
  }
  const torn = tear === null
    ? "no torn tail"
    : tear.bytes === 0
    ? "torn tail: an empty new segment (killed before its header) recreated"
    : `torn tail of ${tear.bytes} bytes truncated`;
  const line = `round ${number}: killed ${run.killedAfterMs} ms after the first ack; ${run.acked} acks (max op ${run.maxAcked}); ` +
    `recovered head ${head} (${head - run.maxAcked} unacknowledged complete entries kept); ${torn}; ` +
    `${named}/${flips} bit flips named; ${violations.length === 0 ? "ok" : `${violations.length} VIOLATIONS`}`;
  return { line, violations };
}

function collectEntries(journal: { opMin: number; locate(op: number): { path: string; offset: number; size: number } }, closed: { firstOp: number; lastOp: number }[]) {
  const out: { op: number; path: string; offset: number; size: number }[] = [];
  for (const segment of closed) {
    for (let op = Math.max(segment.firstOp, journal.opMin); op <= segment.lastOp; op++) out.push({ op, ...journal.locate(op) });
  }
  return out;
}

/** `chronon crash-test`: SIGKILL a journal writer and prove recovery. */
export const command: Command = {
  name: "crash-test",
  summary: "SIGKILL a journal writer at random moments, recover, check nothing acknowledged is lost",
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        rounds: { type: "string", default: "10" },
        seed: { type: "string", default: "1" },
        appenders: { type: "string", default: "8" },
        "segment-bytes": { type: "string", default: "1048576" },
        flips: { type: "string", default: "3" },
        keep: { type: "boolean", default: false },
        child: { type: "string" },
      },
    });
    const number = (name: string, text: string, min: number) => {
      if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}`);
      return Number(text);
    };
    const seed = number("seed", values.seed, 0);
    const appenders = number("appenders", values.appenders, 1);
    const segmentBytes = number("segment-bytes", values["segment-bytes"], 16384);
    if (values.child !== undefined) return await child(values.child, seed, appenders, segmentBytes);
    const rounds = number("rounds", values.rounds, 1);
    const flips = number("flips", values.flips, 0);
    const root = fs.mkdtempSync(join(os.tmpdir(), "chronon-crash-"));
    const path = join(root, "data");
    const disk = await defaultDisk();
    console.log(`crash-test: ${rounds} rounds, seed ${seed}, ${appenders} appenders, ${runtimeName()}, backend ${disk.name}, dir ${path}`);
    await formatDataDir(disk, path, { cluster, replica: 0, replicaCount: 1 });
    const random = seededRandom(seed);
    const state = { verifiedHead: 0 };
    let failed = 0;
    let tornTails = 0;
    try {
      for (let i = 1; i <= rounds; i++) {
        const { line, violations } = await round(disk, path, seed, i, { appenders, segmentBytes, flips }, random, state);
        if (line.includes("torn tail:") || line.includes("truncated;")) tornTails++;
        console.log(line);
        for (const violation of violations.slice(0, 10)) console.log(`  VIOLATION: ${violation}`);
        if (violations.length > 0) failed++;
      }
    } finally {
      await disk.close();
      if (!values.keep && failed === 0) fs.rmSync(root, { recursive: true, force: true });
    }
    console.log(`crash-test: ${rounds - failed}/${rounds} rounds ok, ${tornTails} torn tails truncated, final head op ${state.verifiedHead}${failed > 0 ? `; data kept in ${root}` : ""}`);
    return failed === 0 ? 0 : 1;
  },
};
