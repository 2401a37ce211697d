/**
 * Pre-images: what a state container held at a snapshot's op, kept from the moment apply
 * first writes it after that op (copy on write), so a snapshot encoded over several
 * event-loop turns writes the state as it was at its op, byte for byte.
 *
 * A pre-image is shallow: the container's own entries. The values it refers to are
 * either unchanged since the op or have pre-images of their own (every write goes through
 * the state guard, which tells the snapshot first; see state_guard.ts `WriteWatch`).
 *
 * {@link materialize} builds a copy of a whole value as it was at the op, for the rare
 * state the incremental encoder leaves to the reference encoder (cborg).
 * @module
 */
import { depthMax } from "../app/value_codec.ts";
import { assert } from "../assert.ts";
import { unguard } from "./state_guard.ts";

/** The entries of a Map (key, value, key, value, …) or a Set's members, in order. */
export interface CollectionPreimage {
  readonly kind: "map" | "set";
  readonly items: unknown[];
}

/** An array's elements (holes read as undefined, which is how they encode). */
export interface ArrayPreimage {
  readonly kind: "array";
  readonly items: unknown[];
}

/** An object's own enumerable string keys (Object.keys order) and their values. */
export interface ObjectPreimage {
  readonly kind: "object";
  readonly keys: string[];
  readonly values: unknown[];
}

/** What `changes` holds for a key the Map did not have at the op. */
export const absent: unique symbol = Symbol("absent at the snapshot's op");

/**
 * A Map written only by `set` since the op: what each key written held then (its value,
 * or {@link absent}). Until a delete or clear, every key of the op is still in the Map,
 * in its place (an overwrite keeps a key's position; new keys go to the end), so the
 * Map at the op is the live Map with these values put back and the absent keys skipped:
 * no copy of a Map of a million entries on its first write after the op.
 */
export interface MapChangesPreimage {
  readonly kind: "map_changes";
  /** Entries at the op. */
  readonly size: number;
  readonly changes: Map<unknown, unknown>;
}

/** What one container held at the snapshot's op. */
export type Preimage = CollectionPreimage | ArrayPreimage | ObjectPreimage | MapChangesPreimage;

/** The entries of `map` at the op, from the live Map and its {@link MapChangesPreimage}. */
export function entriesAtOp(map: Map<unknown, unknown>, preimage: MapChangesPreimage): CollectionPreimage {
  const items: unknown[] = new Array(preimage.size * 2);
  const changes = preimage.changes;
  let at = 0;
  map.forEach((value, key) => {
    let was = value;
    if (changes.size !== 0 && changes.has(key)) {
      was = changes.get(key);
      if (was === absent) return;
    }
    items[at++] = key;
    items[at++] = was;
  });
  assert(at === items.length, "every key of the op is still in a Map written only by set");
  return { kind: "map", items };
}

/** The pre-image of `target` now (call it before the first write after the op). */
export function capturePreimage(target: object): Preimage {
  if (target instanceof Map) {
    const items: unknown[] = new Array(target.size * 2);
    let at = 0;
    // forEach, not an iterator: no [key, value] pair per entry (a kv store has 65,536).
    target.forEach((value, key) => {
      items[at++] = key;
      items[at++] = value;
    });
    assert(at === items.length, "a Map pre-image holds every entry");
    return { kind: "map", items };
  }
  if (target instanceof Set) {
    const items: unknown[] = new Array(target.size);
    let at = 0;
    target.forEach((member) => {
      items[at++] = member;
    });
    return { kind: "set", items };
  }
  if (Array.isArray(target)) {
    const length = target.length;
    const items: unknown[] = new Array(length);
    for (let i = 0; i < length; i++) items[i] = target[i];
    return { kind: "array", items };
  }
  const record = target as Record<string, unknown>;
  const keys = Object.keys(record);
  const values: unknown[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) values[i] = record[keys[i]!];
  return { kind: "object", keys, values };
}

/** Copies are cut below this depth: the reference encoder refuses deeper values anyway. */
const materializeDepthMax = depthMax + 4;

/**
 * A copy of `value` as it was at the snapshot's op: every container with a pre-image is
 * rebuilt from it, every other one copied as it is now (unchanged since the op). The copy
 * encodes to the bytes the value had at the op under both encoders: same prototypes (a
 * Map subclass becomes a Map, which both encode alike), same key order, bytes and class
 * instances by reference (an instance makes both encoders throw). Synchronous: this is
 * the fallback path, paid only by states with shapes the incremental encoder gives up on.
 */
export function materialize(value: unknown, preimages: ReadonlyMap<object, Preimage>, depth = 0): unknown {
  if ((typeof value !== "object" || value === null) || depth > materializeDepthMax) return value;
  const target = unguard(value);
  if (ArrayBuffer.isView(target)) return target;
  const preimage = preimages.get(target);
  if (target instanceof Map) {
    const items = preimage === undefined
      ? (capturePreimage(target) as CollectionPreimage).items
      : preimage.kind === "map_changes"
      ? entriesAtOp(target, preimage).items
      : (preimage as CollectionPreimage).items;
    const out = new Map<unknown, unknown>();
    for (let i = 0; i < items.length; i += 2) out.set(materialize(items[i], preimages, depth + 1), materialize(items[i + 1], preimages, depth + 1));
    return out;
  }
  if (target instanceof Set) {
    const items = preimage !== undefined ? (preimage as CollectionPreimage).items : (capturePreimage(target) as CollectionPreimage).items;
    const out = new Set<unknown>();
    for (const item of items) out.add(materialize(item, preimages, depth + 1));
    return out;
  }
  if (Array.isArray(target)) {
    const items = preimage !== undefined ? (preimage as ArrayPreimage).items : target;
    const out: unknown[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) out[i] = materialize(items[i], preimages, depth + 1);
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(target);
  // A class instance (or anything else odd) is kept: both encoders refuse it.
  if (proto !== Object.prototype && proto !== null) return target;
  const { keys, values } = preimage !== undefined ? (preimage as ObjectPreimage) : (capturePreimage(target) as ObjectPreimage);
  const out = Object.create(proto as object | null) as Record<string, unknown>;
  // defineProperty: an own "__proto__" key stays a key, not a prototype.
  for (let i = 0; i < keys.length; i++) {
    Object.defineProperty(out, keys[i]!, { value: materialize(values[i], preimages, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
