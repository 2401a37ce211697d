/**
 * Replica-to-replica messages: a fixed 64-byte binary header (little-endian, DataView) and
 * a body. Entries travel as their 128-byte entry header followed by the body; control
 * bodies are CBOR maps. Decoding never trusts the bytes: anything malformed throws
 * {@link MessageError}, which the replica counts and drops.
 *
 * | offset | size | field    | meaning                                              |
 * |-------:|-----:|----------|------------------------------------------------------|
 * |      0 |   16 | checksum | checksum of bytes 16..end (header rest and body)     |
 * |     16 |   16 | cluster  | 128-bit cluster id                                   |
 * |     32 |    1 | kind     | {@link messageKinds} code                            |
 * |     33 |    1 | version  | {@link messageFormatVersion}                         |
 * |     34 |    2 | replica  | sender's replica index                               |
 * |     36 |    4 | view     | sender's view                                        |
 * |     40 |    4 | size     | body size in bytes                                   |
 * |     44 |    4 | reserved | zero                                                 |
 * |     48 |    8 | commit   | sender's highest known commit (piggybacked on all)   |
 * |     56 |    8 | reserved | zero                                                 |
 * @module
 */
import { decode as cborDecode, encode as cborEncode } from "cborg";
import { cborUintSize, writeCborUint } from "../codec/cbor_item.ts";
import { checksum, checksumEqual } from "../codec/checksum.ts";
import { entryBodySizeMax, entryHeaderSize, verifyHeader } from "../codec/entry_header.ts";
import { assert, assertCount } from "../assert.ts";
import { messageBodySizeMax, messageHeaderSize, messageHeadersMax, messageSizeMax } from "./constants.ts";

/** The message format this code writes and reads. */
export const messageFormatVersion = 1;

/** An entry as it travels: its 128-byte header and its body. */
export interface WireEntry {
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

/** Fields every message carries in its fixed header. */
export interface Envelope {
  readonly cluster: Uint8Array;
  readonly replica: number;
  readonly view: number;
  readonly commit: number;
}

/** Message bodies by kind (see docs/protocol.md for when each is sent). */
export type MessageBody =
  | { readonly kind: "prepare"; readonly entries: readonly WireEntry[] }
  | { readonly kind: "prepare_ok"; readonly op: number; readonly checksum: Uint8Array }
  | { readonly kind: "commit"; readonly commitChecksum: Uint8Array; readonly checkpointOp: number }
  | { readonly kind: "start_view_change" }
  | {
    readonly kind: "do_view_change";
    readonly logView: number;
    readonly op: number;
    readonly checkpointOp: number;
    readonly headers: readonly Uint8Array[];
    /** Ops among `headers` whose entry this replica never held durably (a nack). */
    readonly nacks: readonly number[];
  }
  | { readonly kind: "start_view"; readonly op: number; readonly checkpointOp: number; readonly headers: readonly Uint8Array[] }
  | { readonly kind: "request_start_view" }
  /**
   * "I promised the envelope's view (sent a do_view_change for it) and cannot rejoin yours":
   * a replica's answer to a start_view of an older view. The primary moves the cluster on.
   */
  | { readonly kind: "view_promised" }
  | { readonly kind: "request_prepare"; readonly op: number; readonly checksum: Uint8Array }
  | { readonly kind: "entry"; readonly entry: WireEntry }
  | { readonly kind: "ping"; readonly nonce: number }
  | { readonly kind: "pong"; readonly nonce: number }
  /** A replica that lost its promises (disk lost, head unknown) asks every peer for its current view. */
  | { readonly kind: "recovery"; readonly nonce: number }
  /** The answer to `recovery`: the envelope carries the responder's current view. */
  | { readonly kind: "recovery_response"; readonly nonce: number }
  | { readonly kind: "request_checkpoint"; readonly op: number; readonly offset: number }
  | {
    readonly kind: "checkpoint_chunk";
    readonly op: number;
    readonly checksum: Uint8Array;
    readonly size: number;
    readonly offset: number;
    readonly bytes: Uint8Array;
  };

/** A decoded message: envelope plus body. */
export type Message = Envelope & MessageBody;

/** Kind of a message. */
export type MessageKind = MessageBody["kind"];

/** Wire codes of the message kinds (never reuse a code). */
export const messageKinds: Readonly<Record<MessageKind, number>> = {
  prepare: 1,
  prepare_ok: 2,
  commit: 3,
  start_view_change: 4,
  do_view_change: 5,
  start_view: 6,
  request_start_view: 7,
  request_prepare: 8,
  entry: 9,
  ping: 10,
  pong: 11,
  request_checkpoint: 12,
  checkpoint_chunk: 13,
  recovery: 14,
  recovery_response: 15,
  view_promised: 16,
};

const kindByCode: readonly (MessageKind | undefined)[] = (() => {
  const table: (MessageKind | undefined)[] = [];
  for (const [kind, code] of Object.entries(messageKinds)) table[code] = kind as MessageKind;
  return table;
})();

/** Why a message was not accepted; the replica counts these and drops the message. */
export class MessageError extends Error {
  override readonly name = "MessageError";
  /** Which check failed. */
  readonly problem: "short" | "too_large" | "checksum" | "version" | "kind" | "size" | "reserved" | "body";
  /** Creates an error for `problem` with a human-readable detail. */
  constructor(problem: MessageError["problem"], detail: string) {
    super(`malformed replica message (${problem}): ${detail}`);
    this.problem = problem;
  }
}

/** A message whose envelope is valid but which belongs to another cluster. */
export class ForeignClusterError extends Error {
  override readonly name = "ForeignClusterError";
}

// --- the two control bodies of every round trip, without cborg ------------------------
//
// prepare_ok ({ op, checksum }) and commit ({ checkpointOp, commitChecksum }) are sent for
// every batch and every heartbeat: written and read here by hand, as exactly the bytes
// cborg writes (a two-key map in its canonical order: the shorter key first, a count, a
// 16-byte string), because cborg's general machinery cost more than the rest of a small
// message's encoding. Any other shape is decoded by cborg as before.

/** A CBOR text key: its head byte and ASCII bytes. */
function textKey(name: string): Uint8Array {
  assert(name.length < 24, "short key");
  return Uint8Array.from([0x60 | name.length, ...Array.from(name, (c) => c.charCodeAt(0))]);
}
const keyOp = textKey("op");
const keyChecksum = textKey("checksum");
const keyCheckpointOp = textKey("checkpointOp");
const keyCommitChecksum = textKey("commitChecksum");

/** `{ [countKey]: count, [bytesKey]: bytes }` as cborg writes it (countKey sorts first). */
function encodeCountAndBytes(countKey: Uint8Array, count: number, bytesKey: Uint8Array, bytes: Uint8Array): Uint8Array {
  assertCount(count, "count field");
  assert(bytes.length === 16, "a 16-byte field");
  const out = new Uint8Array(1 + countKey.length + cborUintSize(count) + bytesKey.length + 1 + 16);
  out[0] = 0xa2;
  out.set(countKey, 1);
  let at = writeCborUint(out, 1 + countKey.length, count);
  out.set(bytesKey, at);
  at += bytesKey.length;
  out[at] = 0x50;
  out.set(bytes, at + 1);
  assert(at + 17 === out.length, "sized exactly");
  return out;
}

/**
 * The count and the 16 bytes of a body shaped like {@link encodeCountAndBytes}'s output
 * (shortest count encoding, as cborg writes it), or null for any other bytes (then cborg
 * decodes them and every field is checked as usual).
 */
function decodeCountAndBytes(body: Uint8Array, countKey: Uint8Array, bytesKey: Uint8Array): { count: number; bytes: Uint8Array } | null {
  if (body[0] !== 0xa2 || !startsWith(body, 1, countKey)) return null;
  let at = 1 + countKey.length;
  const head = body[at];
  if (head === undefined || head > 0x1b) return null;
  let count: number;
  if (head < 24) {
    count = head;
    at += 1;
  } else {
    const size = head === 0x18 ? 1 : head === 0x19 ? 2 : head === 0x1a ? 4 : head === 0x1b ? 8 : 0;
    if (size === 0 || at + 1 + size > body.length) return null;
    count = 0;
    for (let i = 0; i < size; i++) count = count * 256 + body[at + 1 + i]!;
    if (!Number.isSafeInteger(count) || cborUintSize(count) !== 1 + size) return null;
    at += 1 + size;
  }
  if (!startsWith(body, at, bytesKey)) return null;
  at += bytesKey.length;
  if (body[at] !== 0x50 || at + 17 !== body.length) return null;
  return { count, bytes: body.slice(at + 1, at + 17) };
}

function startsWith(bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (at + prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

/** Bytes the entries take in a message body. */
function entriesSize(entries: readonly WireEntry[]): number {
  let size = 0;
  for (const entry of entries) size += entry.header.length + entry.body.length;
  return size;
}

/** Writes the entries one after the other into `out` from `offset`. */
function writeEntries(entries: readonly WireEntry[], out: Uint8Array, offset: number): void {
  for (const entry of entries) {
    assert(entry.header.length === entryHeaderSize, "wire entry header is 128 bytes");
    out.set(entry.header, offset);
    out.set(entry.body, offset + entryHeaderSize);
    offset += entryHeaderSize + entry.body.length;
  }
  assert(offset === out.length, "entries fill the message");
}

/** The entries a body of entries carries (prepare, entry), or null for a CBOR or empty body. */
function entriesOf(message: MessageBody): readonly WireEntry[] | null {
  if (message.kind === "prepare") {
    assert(message.entries.length > 0, "a prepare carries at least one entry");
    return message.entries;
  }
  return message.kind === "entry" ? [message.entry] : null;
}

/** The body of a message that is not made of entries. */
function encodeBody(message: Exclude<MessageBody, { kind: "prepare" | "entry" }>): Uint8Array {
  switch (message.kind) {
    case "prepare_ok":
    case "request_prepare":
      return encodeCountAndBytes(keyOp, message.op, keyChecksum, message.checksum);
    case "commit":
      return encodeCountAndBytes(keyCheckpointOp, message.checkpointOp, keyCommitChecksum, message.commitChecksum);
    case "start_view_change":
    case "request_start_view":
    case "view_promised":
      return new Uint8Array(0);
    case "do_view_change":
      assert(message.headers.length <= messageHeadersMax, "do_view_change headers within bound");
      return cborEncode({
        logView: message.logView,
        op: message.op,
        checkpointOp: message.checkpointOp,
        headers: message.headers,
        nacks: message.nacks,
      });
    case "start_view":
      assert(message.headers.length <= messageHeadersMax, "start_view headers within bound");
      return cborEncode({ op: message.op, checkpointOp: message.checkpointOp, headers: message.headers });
    case "ping":
    case "pong":
    case "recovery":
    case "recovery_response":
      return cborEncode({ nonce: message.nonce });
    case "request_checkpoint":
      return cborEncode({ op: message.op, offset: message.offset });
    case "checkpoint_chunk":
      return cborEncode({
        op: message.op,
        checksum: message.checksum,
        size: message.size,
        offset: message.offset,
        bytes: message.bytes,
      });
  }
}

/** Encodes `message` with its checksum. Asserts the size bound (a bug if exceeded). */
export function encodeMessage(message: Message): Uint8Array {
  assert(message.cluster.length === 16, "cluster id is 16 bytes");
  assert(message.replica >= 0 && message.replica <= 0xffff, "replica fits u16");
  assertCount(message.view, "message view");
  assert(message.view <= 0xffff_ffff, "view fits u32");
  assertCount(message.commit, "message commit");
  // Entries (the bulk of the traffic) are written straight into the message: one copy.
  const entries = entriesOf(message);
  const body = entries === null ? encodeBody(message as Exclude<MessageBody, { kind: "prepare" | "entry" }>) : null;
  const bodySize = body === null ? entriesSize(entries!) : body.length;
  assert(bodySize <= messageBodySizeMax, `message body of ${bodySize} bytes exceeds the bound`);
  const bytes = new Uint8Array(messageHeaderSize + bodySize);
  const view = new DataView(bytes.buffer);
  bytes.set(message.cluster, 16);
  bytes[32] = messageKinds[message.kind];
  bytes[33] = messageFormatVersion;
  view.setUint16(34, message.replica, true);
  view.setUint32(36, message.view, true);
  view.setUint32(40, bodySize, true);
  view.setBigUint64(48, BigInt(message.commit), true);
  if (body === null) writeEntries(entries!, bytes, messageHeaderSize);
  else bytes.set(body, messageHeaderSize);
  bytes.set(checksum(bytes.subarray(16)), 0);
  return bytes;
}

// --- decoding: every field is checked, nothing is trusted -------------------------------

type CborMap = Record<string, unknown>;

function cborBody(body: Uint8Array): CborMap {
  let value: unknown;
  try {
    value = cborDecode(body);
  } catch (error) {
    throw new MessageError("body", `CBOR: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new MessageError("body", "body is not a map");
  }
  return value as CborMap;
}

function count(map: CborMap, key: string): number {
  const value = map[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new MessageError("body", `field ${key} is not a non-negative safe integer`);
  }
  return value;
}

function bytesField(map: CborMap, key: string, size?: number): Uint8Array {
  const value = map[key];
  if (!(value instanceof Uint8Array)) throw new MessageError("body", `field ${key} is not bytes`);
  if (size !== undefined && value.length !== size) {
    throw new MessageError("body", `field ${key} is ${value.length} bytes, not ${size}`);
  }
  return value;
}

function headersField(map: CborMap, key: string): Uint8Array[] {
  const value = map[key];
  if (!Array.isArray(value)) throw new MessageError("body", `field ${key} is not a list`);
  if (value.length > messageHeadersMax) throw new MessageError("body", `${value.length} headers exceed the bound`);
  const out: Uint8Array[] = [];
  for (const header of value) {
    if (!(header instanceof Uint8Array) || header.length !== entryHeaderSize) {
      throw new MessageError("body", `field ${key} holds something that is not a 128-byte header`);
    }
    const problem = verifyHeader(header);
    if (problem !== null) throw new MessageError("body", `header in ${key} fails verification (${problem})`);
    out.push(header);
  }
  return out;
}

function opsField(map: CborMap, key: string): number[] {
  const value = map[key];
  if (!Array.isArray(value) || value.length > messageHeadersMax) throw new MessageError("body", `field ${key} is not a bounded list`);
  for (const op of value) {
    if (typeof op !== "number" || !Number.isSafeInteger(op) || op < 0) throw new MessageError("body", `field ${key} holds a non-op`);
  }
  return value as number[];
}

function decodeEntries(body: Uint8Array): WireEntry[] {
  const entries: WireEntry[] = [];
  let offset = 0;
  while (offset < body.length) {
    if (body.length - offset < entryHeaderSize) throw new MessageError("body", "truncated entry header");
    // Views of the message's bytes, which the receiver owns and never writes to (the bus
    // hands each message over as a copy of its own): one allocation per message, not two
    // per entry, and the entries of one prepare live and die together in the log window.
    const header = body.subarray(offset, offset + entryHeaderSize);
    const problem = verifyHeader(header);
    if (problem !== null) throw new MessageError("body", `entry header fails verification (${problem})`);
    const size = new DataView(header.buffer, header.byteOffset, header.length).getUint32(112, true);
    if (size > entryBodySizeMax || body.length - offset - entryHeaderSize < size) {
      throw new MessageError("body", "truncated entry body");
    }
    entries.push({ header, body: body.subarray(offset + entryHeaderSize, offset + entryHeaderSize + size) });
    offset += entryHeaderSize + size;
  }
  if (entries.length === 0) throw new MessageError("body", "no entries");
  return entries;
}

function decodeBody(kind: MessageKind, body: Uint8Array): MessageBody {
  switch (kind) {
    case "prepare":
      return { kind, entries: decodeEntries(body) };
    case "entry": {
      const entries = decodeEntries(body);
      if (entries.length !== 1) throw new MessageError("body", "an entry message carries exactly one entry");
      return { kind, entry: entries[0]! };
    }
    case "prepare_ok":
    case "request_prepare": {
      const fast = decodeCountAndBytes(body, keyOp, keyChecksum);
      if (fast !== null) return { kind, op: fast.count, checksum: fast.bytes };
      const map = cborBody(body);
      return { kind, op: count(map, "op"), checksum: bytesField(map, "checksum", 16) };
    }
    case "commit": {
      const fast = decodeCountAndBytes(body, keyCheckpointOp, keyCommitChecksum);
      if (fast !== null) return { kind, commitChecksum: fast.bytes, checkpointOp: fast.count };
      const map = cborBody(body);
      return { kind, commitChecksum: bytesField(map, "commitChecksum", 16), checkpointOp: count(map, "checkpointOp") };
    }
    case "start_view_change":
    case "request_start_view":
    case "view_promised":
      if (body.length !== 0) throw new MessageError("body", `${kind} has no body`);
      return { kind };
    case "do_view_change": {
      const map = cborBody(body);
      return {
        kind,
        logView: count(map, "logView"),
        op: count(map, "op"),
        checkpointOp: count(map, "checkpointOp"),
        headers: headersField(map, "headers"),
        nacks: opsField(map, "nacks"),
      };
    }
    case "start_view": {
      const map = cborBody(body);
      return { kind, op: count(map, "op"), checkpointOp: count(map, "checkpointOp"), headers: headersField(map, "headers") };
    }
    case "ping":
    case "pong":
    case "recovery":
    case "recovery_response":
      return { kind, nonce: count(cborBody(body), "nonce") };
    case "request_checkpoint": {
      const map = cborBody(body);
      return { kind, op: count(map, "op"), offset: count(map, "offset") };
    }
    case "checkpoint_chunk": {
      const map = cborBody(body);
      return {
        kind,
        op: count(map, "op"),
        checksum: bytesField(map, "checksum", 16),
        size: count(map, "size"),
        offset: count(map, "offset"),
        bytes: bytesField(map, "bytes"),
      };
    }
  }
}

/**
 * Decodes and verifies a message. Throws {@link MessageError} for malformed bytes and
 * {@link ForeignClusterError} for a well-formed message of another cluster.
 */
export function decodeMessage(bytes: Uint8Array, cluster: Uint8Array): Message {
  if (bytes.length < messageHeaderSize) throw new MessageError("short", `${bytes.length} bytes`);
  if (bytes.length > messageSizeMax) throw new MessageError("too_large", `${bytes.length} bytes`);
  if (!checksumEqual(checksum(bytes.subarray(16)), bytes.subarray(0, 16))) {
    throw new MessageError("checksum", "message checksum mismatch");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (bytes[33] !== messageFormatVersion) throw new MessageError("version", `version ${bytes[33]}`);
  const kind = kindByCode[bytes[32]!];
  if (kind === undefined) throw new MessageError("kind", `kind code ${bytes[32]}`);
  const bodySize = view.getUint32(40, true);
  if (bodySize !== bytes.length - messageHeaderSize) throw new MessageError("size", "body size field disagrees");
  if (view.getUint32(44, true) !== 0 || view.getBigUint64(56, true) !== 0n) {
    throw new MessageError("reserved", "reserved bytes are not zero");
  }
  const commit = view.getBigUint64(48, true);
  if (commit > BigInt(Number.MAX_SAFE_INTEGER)) throw new MessageError("body", "commit is not a safe integer");
  const cluster_ = bytes.slice(16, 32);
  if (!checksumEqual(cluster_, cluster)) throw new ForeignClusterError("message from another cluster");
  const body = decodeBody(kind, bytes.subarray(messageHeaderSize));
  return { ...body, cluster: cluster_, replica: view.getUint16(34, true), view: view.getUint32(36, true), commit: Number(commit) };
}
