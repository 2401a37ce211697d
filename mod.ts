/**
 * chronon: a deterministic replicated log with a durable outbox.
 *
 * The public API. Everything an application or an operator's script needs is exported
 * from here; nothing else in the tree is a stable interface.
 * @module
 */
export { checksum, checksumHex } from "./src/codec/checksum.ts";
