/**
 * The 32-hex-digit form of a 128-bit client id, remembered for the clients seen recently.
 *
 * Every event's header carries its client as hex. The executor used to remember the last
 * client only; with 64 clients interleaved (the cluster bench) every event missed and paid
 * a copy of the id and a 32-character string (4% of a kv put's CPU). A direct-mapped table
 * of {@link clientHexSlots} ids hits whenever fewer clients than that are active.
 * @module
 */
import { assert } from "../assert.ts";
import { hex128 } from "./outbox.ts";

/** Ids remembered (a power of two: a slot is picked by masking the id's hash). */
export const clientHexSlots = 256;
/** Bytes of a client id. */
const clientSize = 16;

assert((clientHexSlots & (clientHexSlots - 1)) === 0, "clientHexSlots is a power of two");

/** A bounded table from client id bytes to their hex string. */
export class ClientHexTable {
  /** Slot i holds the id bytes[16i, 16i+16) and its hex texts[i] (empty: unused). */
  readonly #bytes = new Uint8Array(clientHexSlots * clientSize);
  readonly #texts: string[] = new Array<string>(clientHexSlots).fill("");

  /** `hex128(client)`, from the table when the id was seen recently. */
  hex(client: Uint8Array): string {
    // hex128 reads the first 16 bytes of a longer array; such ids are not remembered.
    if (client.length !== clientSize) return hex128(client);
    // Ids are random or counters: fold every byte in, so ids that differ anywhere spread.
    let hash = 0;
    for (let i = 0; i < clientSize; i++) hash = Math.imul(hash ^ client[i]!, 0x0100_0193);
    const slot = (hash ^ (hash >>> 16)) & (clientHexSlots - 1);
    const bytes = this.#bytes;
    const at = slot * clientSize;
    const text = this.#texts[slot]!;
    if (text !== "") {
      let i = 0;
      while (i < clientSize && bytes[at + i] === client[i]) i++;
      if (i === clientSize) return text;
    }
    const hex = hex128(client);
    bytes.set(client, at);
    this.#texts[slot] = hex;
    return hex;
  }
}
