/**
 * Where a CBOR data item ends, without decoding it: lets the binary client port hand an
 * event's bytes, and a reply's, on as they are instead of decoding and re-encoding
 * their strings (a kv put carries and echoes its value).
 *
 * Walks the structure only (heads, lengths, nesting); well-formedness in the RFC 8949
 * sense, not validity: it does not check UTF-8 or tags. Callers that need validity
 * decode as well (the client port decodes every frame).
 * @module
 */

/** Deepest nesting walked; deeper items count as malformed (a bound on recursion). */
export const cborDepthMax = 64;

/** The break byte that ends an indefinite-length item. */
const breakByte = 0xff;

/**
 * The offset just past the CBOR data item that starts at `at`, or -1 when `bytes` holds
 * no whole well-formed item there (truncated, reserved head, stray break, too deep).
 * @example
 * cborItemEnd(new Uint8Array([0x82, 0x01, 0x61, 0x61, 0x00]), 0); // 4: the array [1, "a"]
 */
export function cborItemEnd(bytes: Uint8Array, at: number): number {
  return itemEnd(bytes, at, 0);
}

function itemEnd(bytes: Uint8Array, at: number, depth: number): number {
  if (depth > cborDepthMax || at < 0 || at >= bytes.length) return -1;
  const initial = bytes[at]!;
  const major = initial >>> 5;
  const info = initial & 0x1f;
  let p = at + 1;
  if (info === 31) return indefiniteEnd(bytes, p, major, depth);
  let argument: number;
  if (info < 24) {
    argument = info;
  } else if (info <= 27) {
    const size = 1 << (info - 24);
    if (p + size > bytes.length) return -1;
    argument = 0;
    for (let i = 0; i < size; i++) argument = argument * 256 + bytes[p + i]!;
    p += size;
  } else {
    return -1; // 28..30 are reserved
  }
  switch (major) {
    case 0:
    case 1:
    case 7:
      return p;
    case 2:
    case 3:
      return argument <= bytes.length - p ? p + argument : -1;
    case 4:
    case 5: {
      const items = major === 4 ? argument : argument * 2;
      // Every item takes at least one byte: a count past the rest is malformed at once.
      if (items > bytes.length - p) return -1;
      for (let i = 0; i < items; i++) {
        p = itemEnd(bytes, p, depth + 1);
        if (p < 0) return -1;
      }
      return p;
    }
    default:
      return itemEnd(bytes, p, depth + 1); // 6: a tag and its item
  }
}

/** End of an indefinite-length string, array or map whose content starts at `p`. */
function indefiniteEnd(bytes: Uint8Array, p: number, major: number, depth: number): number {
  if (major === 2 || major === 3) {
    // Chunks are definite strings of the same major type.
    while (p < bytes.length && bytes[p] !== breakByte) {
      if (bytes[p]! >>> 5 !== major || (bytes[p]! & 0x1f) === 31) return -1;
      p = itemEnd(bytes, p, depth + 1);
      if (p < 0) return -1;
    }
  } else if (major === 4 || major === 5) {
    let count = 0;
    while (p < bytes.length && bytes[p] !== breakByte) {
      p = itemEnd(bytes, p, depth + 1);
      if (p < 0) return -1;
      count++;
    }
    if (major === 5 && count % 2 !== 0) return -1;
  } else {
    return -1; // no indefinite integers, tags or simple values; a lone break
  }
  return p < bytes.length ? p + 1 : -1;
}

/** Bytes of the shortest CBOR head of an unsigned integer `n` (what cborg writes for it). */
export function cborUintSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x1_0000 ? 3 : n < 0x1_0000_0000 ? 5 : 9;
}

/**
 * Writes unsigned integer `n` (a safe integer) at `at` in its shortest CBOR form and
 * returns the offset after it.
 * @example
 * const out = new Uint8Array(3);
 * writeCborUint(out, 0, 500); // 3: [0x19, 0x01, 0xf4]
 */
export function writeCborUint(target: Uint8Array, at: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError("a CBOR uint here is a safe non-negative integer");
  const size = cborUintSize(n);
  if (size === 1) {
    target[at] = n;
    return at + 1;
  }
  target[at] = size === 2 ? 24 : size === 3 ? 25 : size === 5 ? 26 : 27;
  let rest = n;
  for (let i = size - 1; i >= 1; i--) {
    target[at + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return at + size;
}
