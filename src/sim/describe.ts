/**
 * Short human-readable descriptions of replica messages and storage actions for trace
 * lines (`chronon sim --seed S --trace`). Only used when trace lines are kept, so the
 * decoding cost is paid only when someone reads the trace.
 * @module
 */
import { checksumHex } from "../codec/checksum.ts";
import { decodeHeader } from "../codec/entry_header.ts";
import { decodeMessage } from "../vsr/message.ts";
import type { StorageAction } from "../vsr/replica_api.ts";

function entryDesc(header: Uint8Array): string {
  const h = decodeHeader(header);
  return `${h.op}@v${h.view}:${checksumHex(h.checksum).slice(0, 6)}`;
}

/** One line describing a replica message: kind, view, commit and the kind's key fields. */
export function describeMessage(bytes: Uint8Array, cluster: Uint8Array): string {
  let m;
  try {
    m = decodeMessage(bytes, cluster);
  } catch (error) {
    return `undecodable (${(error as Error).message})`;
  }
  const base = `${m.kind} v${m.view} c${m.commit}`;
  switch (m.kind) {
    case "prepare":
      return `${base} [${m.entries.map((e) => entryDesc(e.header)).join(" ")}]`;
    case "prepare_ok":
      return `${base} op ${m.op}`;
    case "do_view_change":
      return `${base} log_view ${m.logView} op ${m.op} cp ${m.checkpointOp} [${m.headers.map(entryDesc).join(" ")}] nacks [${m.nacks.join(",")}]`;
    case "start_view":
      return `${base} op ${m.op} cp ${m.checkpointOp} [${m.headers.map(entryDesc).join(" ")}]`;
    case "request_prepare":
      return `${base} op ${m.op} ${checksumHex(m.checksum).slice(0, 6)}`;
    case "entry":
      return `${base} ${entryDesc(m.entry.header)}`;
    case "commit":
      return `${base} cp ${m.checkpointOp}`;
    case "request_checkpoint":
      return `${base} op ${m.op} offset ${m.offset}`;
    case "checkpoint_chunk":
      return `${base} op ${m.op} offset ${m.offset}/${m.size}`;
    default:
      return base;
  }
}

/** One line describing a storage action a replica asked for. */
export function describeAction(action: StorageAction): string {
  switch (action.kind) {
    case "write_entry":
    case "repair_entry":
      return `${action.kind} #${action.id} ${entryDesc(action.header)}`;
    case "write_superblock": {
      const sb = action.superblock;
      return `${action.kind} #${action.id} view ${sb.view} log_view ${sb.logView} commit ${sb.commit} cp ${sb.checkpointOp}`;
    }
    default:
      return `${action.kind} #${action.id}${"op" in action ? ` op ${action.op}` : ""}`;
  }
}
