/**
 * The bus handshake: both ends prove knowledge of the cluster secret without revealing
 * it, bound to the cluster id, both replica indexes and fresh nonces from both ends, and
 * derive one MAC key per direction for the frames that follow.
 *
 *     dialer (lower index)                       acceptor (higher index)
 *       hello {cluster, from, to, role, nonce_d} ─▶
 *                                               ◀─ hello {cluster, from, to, role, nonce_a}
 *       proof HMAC(secret, proof|d→a|nonces)   ─▶
 *                                               ◀─ proof HMAC(secret, proof|a→d|nonces)
 *
 * A proof names its sender, its receiver and its role, so it cannot be reflected back
 * or replayed to another replica; fresh nonces make a recorded handshake useless later.
 * Keys: key(from→to) = HMAC(secret, key|cluster|from|to|nonce_d|nonce_a).
 * @module
 */
import { createHmac, randomBytes } from "node:crypto";
import { assert } from "../assert.ts";

/** Size of a handshake nonce in bytes. */
export const nonceSize = 32;
/** Size of a hello payload: cluster 16, from u16, to u16, role u8, reserved u8, nonce 32. */
export const helloSize = 16 + 2 + 2 + 1 + 1 + nonceSize;
/** Size of a proof payload (full HMAC-SHA256). */
export const proofSize = 32;
/** Size of a per-direction frame key. */
export const keySize = 32;

/** Which end of the connection: the dialer has the lower replica index. */
export type Role = "dialer" | "acceptor";
const roleByte: Record<Role, number> = { dialer: 1, acceptor: 2 };

/** A hello: who the sender is, whom it believes it talks to, and its fresh nonce. */
export interface Hello {
  readonly cluster: Uint8Array;
  readonly from: number;
  readonly to: number;
  readonly role: Role;
  readonly nonce: Uint8Array;
}

/** A fresh random nonce. */
export function nonceNew(): Uint8Array {
  return new Uint8Array(randomBytes(nonceSize));
}

/** Encodes a hello payload. */
export function encodeHello(hello: Hello): Uint8Array {
  assert(hello.cluster.length === 16, "cluster id is 16 bytes");
  assert(hello.nonce.length === nonceSize, "nonce size");
  assert(Number.isInteger(hello.from) && hello.from >= 0 && hello.from <= 0xffff, "from fits u16");
  assert(Number.isInteger(hello.to) && hello.to >= 0 && hello.to <= 0xffff, "to fits u16");
  const bytes = new Uint8Array(helloSize);
  const view = new DataView(bytes.buffer);
  bytes.set(hello.cluster, 0);
  view.setUint16(16, hello.from, true);
  view.setUint16(18, hello.to, true);
  bytes[20] = roleByte[hello.role];
  bytes.set(hello.nonce, 22);
  return bytes;
}

/** Decodes a hello payload, or null when it is malformed. */
export function decodeHello(bytes: Uint8Array): Hello | null {
  if (bytes.length !== helloSize) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const role = bytes[20] === 1 ? "dialer" : bytes[20] === 2 ? "acceptor" : null;
  if (role === null || bytes[21] !== 0) return null;
  return {
    cluster: bytes.slice(0, 16),
    from: view.getUint16(16, true),
    to: view.getUint16(18, true),
    role,
    nonce: bytes.slice(22, 22 + nonceSize),
  };
}

function mac(secret: Uint8Array, label: string, cluster: Uint8Array, from: number, to: number, role: Role | null, nonceDialer: Uint8Array, nonceAcceptor: Uint8Array): Uint8Array {
  const fields = new Uint8Array(5);
  const view = new DataView(fields.buffer);
  view.setUint16(0, from, true);
  view.setUint16(2, to, true);
  fields[4] = role === null ? 0 : roleByte[role];
  const digest = createHmac("sha256", secret)
    .update(label).update(cluster).update(fields).update(nonceDialer).update(nonceAcceptor)
    .digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.length).slice();
}

/** The proof that `from` (in `role`) knows the secret, for this pair of nonces. */
export function proofCompute(secret: Uint8Array, cluster: Uint8Array, from: number, to: number, role: Role, nonceDialer: Uint8Array, nonceAcceptor: Uint8Array): Uint8Array {
  assert(from !== to, "a replica never handshakes with itself");
  const proof = mac(secret, "chronon bus proof v1", cluster, from, to, role, nonceDialer, nonceAcceptor);
  assert(proof.length === proofSize, "proof size");
  return proof;
}

/** The MAC key for frames sent from `from` to `to` on this connection. */
export function keyDerive(secret: Uint8Array, cluster: Uint8Array, from: number, to: number, nonceDialer: Uint8Array, nonceAcceptor: Uint8Array): Uint8Array {
  const key = mac(secret, "chronon bus key v1", cluster, from, to, null, nonceDialer, nonceAcceptor);
  assert(key.length === keySize, "key size");
  return key;
}
