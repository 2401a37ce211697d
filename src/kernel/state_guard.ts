/**
 * Lets `apply` mutate the state in place (fast: no copy of a 100,000-account Map per
 * event) while keeping the contract "if apply throws, the state is as before".
 *
 * The state is handed to `apply` behind proxies, created lazily as apply walks into it.
 * While a transaction is open, every write through a proxy (property set/delete, array
 * methods, Map/Set set/add/delete/clear) appends an undo record; `rollback()` replays
 * them backwards. The first delete in a container captures the container's entries once,
 * so a rollback also restores iteration order (which is observable state).
 *
 * Outside a transaction the proxies pass everything through (a proxy the app stored
 * inside a fresh object stays usable). In read-only mode (queries) every write throws.
 *
 * Not guarded: writes into typed arrays (replace them instead) and frozen objects (which
 * cannot be written). Cost: about one proxy hop per property read inside apply; measured
 * by `chronon bench kernel`.
 * @module
 */
import { assert } from "../assert.ts";

type UndoRecord =
  | { readonly kind: "property"; readonly target: Record<PropertyKey, unknown>; readonly key: PropertyKey; readonly had: boolean; readonly old: unknown }
  | { readonly kind: "map"; readonly target: Map<unknown, unknown>; readonly key: unknown; readonly had: boolean; readonly old: unknown }
  | { readonly kind: "set"; readonly target: Set<unknown>; readonly key: unknown; readonly had: boolean }
  | { readonly kind: "capture"; readonly restore: () => void };

type Mode = "pass" | "record" | "read_only";

let mode: Mode = "pass";
let undo: UndoRecord[] = [];
let captured = new WeakSet<object>();

const proxyTarget = new WeakMap<object, object>();
const targetProxy = new WeakMap<object, object>();

/** Undo records one transaction may hold before apply is stopped (bounds memory). */
export const undoRecordsMax = 1_000_000;

/** Thrown by a write to the state inside `query`. */
export class StateReadOnlyError extends TypeError {
  override readonly name = "StateReadOnlyError";
}

function push(record: UndoRecord): void {
  if (undo.length >= undoRecordsMax) {
    throw new RangeError(`apply made more than ${undoRecordsMax} writes to the state in one event`);
  }
  undo.push(record);
}

function writable(): boolean {
  if (mode === "read_only") throw new StateReadOnlyError("query must not modify the state");
  return mode === "record";
}

/** The proxy for `value` (or the value itself for primitives, bytes and frozen objects). */
export function guard<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (proxyTarget.has(value)) return value;
  if (ArrayBuffer.isView(value) || Object.isFrozen(value)) return value;
  const existing = targetProxy.get(value);
  if (existing !== undefined) return existing as T;
  let proxy: object;
  if (value instanceof Map) proxy = new Proxy(value, mapHandler);
  else if (value instanceof Set) proxy = new Proxy(value, setHandler);
  else proxy = new Proxy(value as Record<PropertyKey, unknown>, objectHandler);
  proxyTarget.set(proxy, value);
  targetProxy.set(value, proxy);
  return proxy as T;
}

/** The object behind a guard proxy (or `value` unchanged). */
export function unguard<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  const target = proxyTarget.get(value);
  return (target ?? value) as T;
}

function captureObject(target: Record<PropertyKey, unknown>): void {
  if (captured.has(target)) return;
  captured.add(target);
  const keys = Reflect.ownKeys(target);
  const descriptors = keys.map((key) => [key, Reflect.getOwnPropertyDescriptor(target, key)!] as const);
  const isArray = Array.isArray(target);
  push({
    kind: "capture",
    restore: () => {
      for (const key of Reflect.ownKeys(target)) {
        if (!(isArray && key === "length")) Reflect.deleteProperty(target, key);
      }
      if (isArray) (target as unknown as unknown[]).length = 0;
      for (const [key, descriptor] of descriptors) Reflect.defineProperty(target, key, descriptor);
    },
  });
}

const objectHandler: ProxyHandler<Record<PropertyKey, unknown>> = {
  get(target, key) {
    const value = target[key];
    if (typeof value === "object" && value !== null) return guard(value);
    return value;
  },
  set(target, key, value) {
    if (writable()) {
      // Writing past an array's end grows its length implicitly: record the old length
      // first, so the undo (newest first) deletes the element and then truncates.
      if (Array.isArray(target) && typeof key === "string" && Number(key) >= target.length) {
        push({ kind: "property", target, key: "length", had: true, old: target.length });
      }
      push({ kind: "property", target, key, had: Object.hasOwn(target, key), old: target[key] });
    }
    target[key] = unguard(value);
    return true;
  },
  deleteProperty(target, key) {
    if (writable() && Object.hasOwn(target, key)) captureObject(target);
    return Reflect.deleteProperty(target, key);
  },
  defineProperty(target, key, descriptor) {
    if (writable()) captureObject(target);
    const copy = { ...descriptor };
    if ("value" in copy) copy.value = unguard(copy.value);
    return Reflect.defineProperty(target, key, copy);
  },
  setPrototypeOf() {
    throw new TypeError("apply must not change the prototype of state objects");
  },
};

function captureMap(target: Map<unknown, unknown>): void {
  if (captured.has(target)) return;
  captured.add(target);
  const entries = Array.from(target);
  push({
    kind: "capture",
    restore: () => {
      target.clear();
      for (const [key, value] of entries) target.set(key, value);
    },
  });
}

function* guardedEntries(iterator: Iterable<[unknown, unknown]>): Generator<[unknown, unknown]> {
  for (const [key, value] of iterator) yield [key, guard(value)];
}

function* guardedValues(iterator: Iterable<unknown>): Generator<unknown> {
  for (const value of iterator) yield guard(value);
}

const mapHandler: ProxyHandler<Map<unknown, unknown>> = {
  get(target, key, receiver) {
    switch (key) {
      case "get":
        return (k: unknown) => guard(target.get(k));
      case "set":
        return (k: unknown, value: unknown) => {
          if (writable()) push({ kind: "map", target, key: k, had: target.has(k), old: target.get(k) });
          target.set(k, unguard(value));
          return receiver;
        };
      case "delete":
        return (k: unknown) => {
          if (writable() && target.has(k)) captureMap(target);
          return target.delete(k);
        };
      case "clear":
        return () => {
          if (writable() && target.size > 0) captureMap(target);
          target.clear();
        };
      case "has":
        return (k: unknown) => target.has(k);
      case "size":
        return target.size;
      case "keys":
        return () => target.keys();
      case "values":
        return () => guardedValues(target.values());
      case "entries":
      case Symbol.iterator:
        return () => guardedEntries(target.entries());
      case "forEach":
        return (callback: (value: unknown, key: unknown, map: unknown) => void, thisArg?: unknown) => {
          target.forEach((value, k) => callback.call(thisArg, guard(value), k, receiver));
        };
      default: {
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      }
    }
  },
  set() {
    throw new TypeError("apply must not set properties on a Map (use map.set)");
  },
};

function captureSet(target: Set<unknown>): void {
  if (captured.has(target)) return;
  captured.add(target);
  const members = Array.from(target);
  push({
    kind: "capture",
    restore: () => {
      target.clear();
      for (const member of members) target.add(member);
    },
  });
}

const setHandler: ProxyHandler<Set<unknown>> = {
  get(target, key, receiver) {
    switch (key) {
      case "add":
        return (value: unknown) => {
          const member = unguard(value);
          if (writable() && !target.has(member)) push({ kind: "set", target, key: member, had: false });
          target.add(member);
          return receiver;
        };
      case "delete":
        return (value: unknown) => {
          const member = unguard(value);
          if (writable() && target.has(member)) captureSet(target);
          return target.delete(member);
        };
      case "clear":
        return () => {
          if (writable() && target.size > 0) captureSet(target);
          target.clear();
        };
      case "has":
        return (value: unknown) => target.has(unguard(value));
      case "size":
        return target.size;
      case "values":
      case "keys":
      case Symbol.iterator:
        return () => guardedValues(target.values());
      case "forEach":
        return (callback: (value: unknown, key: unknown, set: unknown) => void, thisArg?: unknown) => {
          target.forEach((value) => callback.call(thisArg, guard(value), guard(value), receiver));
        };
      default: {
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      }
    }
  },
  set() {
    throw new TypeError("apply must not set properties on a Set (use set.add)");
  },
};

/** Opens a transaction: writes through guard proxies are recorded until commit/rollback. */
export function beginTransaction(): void {
  assert(mode === "pass", `state transaction opened while ${mode}`);
  assert(undo.length === 0, "undo log not empty at transaction start");
  mode = "record";
}

/** Keeps every write of the transaction. */
export function commitTransaction(): void {
  assert(mode === "record", "commit without a transaction");
  mode = "pass";
  undo = [];
  captured = new WeakSet();
}

/** Undoes every write of the transaction, newest first. Returns the number undone. */
export function rollbackTransaction(): number {
  assert(mode === "record", "rollback without a transaction");
  mode = "pass";
  const records = undo;
  undo = [];
  captured = new WeakSet();
  for (let i = records.length - 1; i >= 0; i--) {
    const record = records[i]!;
    switch (record.kind) {
      case "property":
        if (record.had) record.target[record.key] = record.old;
        else delete record.target[record.key];
        break;
      case "map":
        if (record.had) record.target.set(record.key, record.old);
        else record.target.delete(record.key);
        break;
      case "set":
        if (!record.had) record.target.delete(record.key);
        break;
      case "capture":
        record.restore();
        break;
    }
  }
  return records.length;
}

/** Runs `body` with writes through guard proxies forbidden (for queries). */
export function readOnly<T>(body: () => T): T {
  assert(mode === "pass", `read-only section entered while ${mode}`);
  mode = "read_only";
  try {
    return body();
  } finally {
    mode = "pass";
  }
}
