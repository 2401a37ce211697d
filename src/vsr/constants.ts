/**
 * Static bounds and reserved operation numbers of the replication protocol. Bounds set by
 * configuration live in {@link ReplicaConfig}; these are the ones every replica shares
 * whatever the configuration.
 * @module
 */
import { assert } from "../assert.ts";
import { entryBodySizeMax, entryHeaderSize } from "../codec/entry_header.ts";

/** Operation of the root entry (op 0) only. */
export const operationRoot = 0;
/** Operation of a session registration (client request number 0). */
export const operationRegister = 1;

/** Size of the fixed binary header of every replica message. */
export const messageHeaderSize = 64;
/** Largest encoded message: one full-size entry plus room for its header and framing. */
export const messageSizeMax = 2 * 1024 * 1024;
/** Largest message body. */
export const messageBodySizeMax = messageSizeMax - messageHeaderSize;
/** Largest state-transfer chunk of a checkpoint. */
export const checkpointChunkSizeMax = 1024 * 1024;
/**
 * Bytes of a checkpoint's snapshot encoded per ready() when the state machine encodes it in
 * steps (StateMachine.beginSnapshot): about 0.3 ms of the event loop per turn measured on
 * the kv example, so an 18 MB state takes some 70 turns and never one 40–60 ms pause.
 */
export const snapshotStepBytes = 256 * 1024;
/** Largest number of headers in a do_view_change, start_view or headers message. */
export const messageHeadersMax = Math.floor((messageBodySizeMax - 1024) / (entryHeaderSize + 4));
/** Client requests waiting to be prepared at the primary (beyond the pipeline) before `busy`. */
export const requestQueueMax = 1024;
/** Linearizable queries waiting for their quorum round before `busy`. */
export const queriesPendingMax = 1024;
/** Sessions remembered as evicted, so a late client gets a definite `session_evicted`. */
export const evictedRememberedMax = 4096;
/** Entries a primary resends to one lagging backup per retransmission round. */
export const retransmitBurstMax = 64;
/** Entries a replica asks peers for per repair round. */
export const repairBurstMax = 64;
/** Ticks between retransmissions of prepares, repair and catch-up requests. */
export const retransmitTicks = 4;
/** Ticks a linearizable query waits for its quorum round before the ping is repeated. */
export const queryRetryTicks = 8;
/** Largest multiplier of the view-change timeout (escalation doubles it up to this). */
export const viewChangeBackoffMax = 16;

// A full-size entry with its header must fit one message, or it could never be prepared.
assert(entryBodySizeMax + entryHeaderSize + messageHeaderSize <= messageSizeMax, "an entry fits a message");
assert(checkpointChunkSizeMax + 4096 <= messageBodySizeMax, "a checkpoint chunk fits a message");
assert(messageHeadersMax > 1024, "a view change can carry a deep pipeline's headers");
