/**
 * Counters a bus keeps: what went in and out, and every dropped connection or message by
 * reason. Plain numbers in one object, so the node can export them as metrics.
 * @module
 */

/** Why a connection was dropped by this end. */
export type DropReason =
  /** The peer's hello named another cluster id. */
  | "wrong_cluster"
  /** The peer's proof did not verify: it does not know the cluster secret. */
  | "bad_secret"
  /** A frame's checksum did not match its bytes (corruption, or a stray writer). */
  | "bad_checksum"
  /** A message frame's MAC did not verify (injection, or bytes from another connection). */
  | "bad_mac"
  /** A verified frame carried an old sequence number (a replayed frame). */
  | "replayed"
  /** A frame header announced more than the size limit. */
  | "oversized"
  /** Bytes that are not a frame of this protocol (wrong magic, version or kind). */
  | "garbage"
  /** A well-formed frame at the wrong point of the handshake. */
  | "protocol"
  /** The peer's index is out of range, is ours, is not the one dialed, or is not allowed to dial. */
  | "unknown_peer"
  /** The peer did not finish the handshake in time. */
  | "handshake_timeout"
  /** Too many connections were already handshaking. */
  | "pending_full";

/** Every drop reason, in a stable order (for metrics and docs). */
export const dropReasons: readonly DropReason[] = [
  "wrong_cluster", "bad_secret", "bad_checksum", "bad_mac", "replayed", "oversized",
  "garbage", "protocol", "unknown_peer", "handshake_timeout", "pending_full",
];

/** Traffic and fault counters of one bus. */
export interface BusCounters {
  /** Message frames received and delivered to the handler. */
  framesIn: number;
  /** Message frames written to sockets. */
  framesOut: number;
  /** Bytes received (all frames, headers included). */
  bytesIn: number;
  /** Bytes written (all frames, headers included). */
  bytesOut: number;
  /** Messages dropped because a peer's send queue was full. */
  messagesDroppedQueueFull: number;
  /** Messages dropped because they exceed the frame size limit (never sent). */
  messagesDroppedOversized: number;
  /** Connections dropped by this end, by reason. */
  connectionsDropped: Record<DropReason, number>;
  /** Connections that completed the handshake. */
  handshakesCompleted: number;
  /** Inbound TCP connections accepted (before authentication). */
  connectionsAccepted: number;
  /** Dials after the first one to a peer (after a failure or a lost connection). */
  reconnects: number;
}

/** Zeroed counters. */
export function busCountersNew(): BusCounters {
  const connectionsDropped = {} as Record<DropReason, number>;
  for (const reason of dropReasons) connectionsDropped[reason] = 0;
  return {
    framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0,
    messagesDroppedQueueFull: 0, messagesDroppedOversized: 0,
    connectionsDropped, handshakesCompleted: 0, connectionsAccepted: 0, reconnects: 0,
  };
}
