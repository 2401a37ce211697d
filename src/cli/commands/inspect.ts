import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { checksumHex } from "../../codec/checksum.ts";
import { formatClusterId } from "../../storage/cluster_id.ts";
import { openDataDir } from "../../storage/data_dir.ts";
import { defaultDisk, reportStorageError, ttyProgress } from "./storage_common.ts";

const usage = `chronon inspect DIR [--json]

Verifies a data dir without writing to it: the identity file, every superblock copy, every
journal entry's header and body checksum and the hash chain from the root entry to the
head. Prints the op range, the segments, the bytes, the head checksum, the superblock
fields and every fault found (op, file, offset, kind). A torn tail (what a crash leaves of
an unacknowledged write) is shown; the next open truncates it.

Exit code: 0 when everything verifies, 1 when any fault was found or the data dir cannot
be opened (the message names what is wrong).

  --json   one JSON object on stdout instead of text`;

/** `chronon inspect`: verifies and describes a data dir. */
export const command: Command = {
  name: "inspect",
  summary: "verify a data dir's journal and superblock and print what it holds",
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { json: { type: "boolean", default: false } }, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError("give exactly one DIR");
    const path = positionals[0]!;
    const disk = await defaultDisk();
    const started = performance.now();
    let dir;
    try {
      const progress = values.json ? undefined : ttyProgress("verifying journal");
      dir = await openDataDir(disk, path, { readOnly: true, ...(progress === undefined ? {} : { progress }) });
    } catch (error) {
      await disk.close();
      return reportStorageError("inspect", error);
    }
    const seconds = (performance.now() - started) / 1000;
    const { journal, superblock, superblockReport, identity, recovery } = dir;
    const state = superblock.state;
    const segments = journal.segments();
    const bytes = segments.reduce((sum, s) => sum + s.bytes, 0);
    const faults = journal.faults();
    const superblockFaults = superblockReport.badCopies.map((b) => ({ copy: b.copy, problem: b.problem }));
    const report = {
      path,
      backend: disk.name,
      identity: { cluster: formatClusterId(identity.cluster), replica: identity.replica, replicaCount: identity.replicaCount },
      superblock: {
        sequence: superblockReport.sequence,
        view: state.view,
        logView: state.logView,
        commit: state.commit,
        checkpointOp: state.checkpointOp,
        checkpointChecksum: checksumHex(state.checkpointChecksum),
        badCopies: superblockFaults,
        staleCopies: superblockReport.staleCopies,
      },
      journal: {
        opMin: journal.opMin,
        opHead: journal.opHead,
        ops: journal.opHead - journal.opMin + 1,
        bytes,
        headChecksum: journal.headChecksum === null ? null : checksumHex(journal.headChecksum),
        segments: segments.map((s) => ({ file: s.path, firstOp: s.firstOp, lastOp: s.lastOp, bytes: s.bytes })),
        tornTail: recovery.tornTail,
        faults,
      },
      verifySeconds: Number(seconds.toFixed(3)),
    };
    await dir.close();
    await disk.close();
    const faultCount = faults.length + superblockFaults.length;
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
      return faultCount > 0 ? 1 : 0;
    }
    const lines = [
      `data dir    ${path} (backend ${disk.name}, verified in ${seconds.toFixed(2)} s)`,
      `identity    cluster ${report.identity.cluster}, replica ${identity.replica} of ${identity.replicaCount}`,
      `superblock  sequence ${superblockReport.sequence}: view ${state.view}, log_view ${state.logView}, commit ${state.commit}, checkpoint op ${state.checkpointOp}`,
      `            copies: ${4 - superblockFaults.length} valid${superblockFaults.map((b) => `, copy ${b.copy} bad (${b.problem})`).join("")}${superblockReport.staleCopies.length > 0 ? `, stale: ${superblockReport.staleCopies.join(", ")}` : ""}`,
      `journal     ops ${journal.opMin}..${journal.opHead} (${report.journal.ops} ops), ${segments.length} segment(s), ${bytes} bytes`,
      `head        ${report.journal.headChecksum ?? "(unknown: the head op is faulty)"}`,
      "segments",
      ...segments.map((s) => `  ${s.path}  ops ${s.firstOp}..${s.lastOp}  ${s.bytes} bytes`),
    ];
    if (recovery.tornTail !== null) {
      lines.push(`torn tail   ${recovery.tornTail.bytes} bytes at ${recovery.tornTail.path}:${recovery.tornTail.offset} (an interrupted unacknowledged write; the next open truncates it)`);
    }
    if (faultCount === 0) lines.push("faults      none");
    else {
      lines.push(`faults      ${faultCount}`);
      for (const b of superblockFaults) lines.push(`  superblock copy ${b.copy}: ${b.problem}`);
      for (const f of faults) {
        lines.push(`  op ${f.op < 0 ? "-" : f.op}  ${f.kind.padEnd(7)} ${f.path}:${f.offset < 0 ? "?" : f.offset}  ${f.detail}`);
      }
    }
    console.log(lines.join("\n"));
    return faultCount > 0 ? 1 : 0;
  },
};
