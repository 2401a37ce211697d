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

/** Undo record kinds (the log is kept in parallel arrays: no object per write). */
const undoProperty = 0;
const undoMap = 1;
const undoSet = 2;
const undoCapture = 3;

type Mode = "pass" | "record" | "read_only";

let mode: Mode = "pass";
// The undo log: record i is (undoKinds[i], undoTargets[i], undoKeys[i], undoHads[i],
// undoOlds[i]); a capture keeps its restore function in undoOlds. Reused between
// transactions (cleared, never reallocated).
const undoKinds: number[] = [];
const undoTargets: object[] = [];
const undoKeys: unknown[] = [];
const undoHads: boolean[] = [];
const undoOlds: unknown[] = [];
let undoLength = 0;
/** Containers captured in this transaction; replaced only when a transaction used it. */
let captured = new WeakSet<object>();
let capturedAny = false;

const proxyTarget = new WeakMap<object, object>();
const targetProxy = new WeakMap<object, object>();

/** Undo records one transaction may hold before apply is stopped (bounds memory). */
export const undoRecordsMax = 1_000_000;

/** Thrown by a write to the state inside `query`. */
export class StateReadOnlyError extends TypeError {
  override readonly name = "StateReadOnlyError";
}

function push(kind: number, target: object, key: unknown, had: boolean, old: unknown): void {
  const at = undoLength;
  if (at >= undoRecordsMax) {
    throw new RangeError(`apply made more than ${undoRecordsMax} writes to the state in one event`);
  }
  undoKinds[at] = kind;
  undoTargets[at] = target;
  undoKeys[at] = key;
  undoHads[at] = had;
  undoOlds[at] = old;
  undoLength = at + 1;
}

function markCaptured(target: object): boolean {
  if (captured.has(target)) return false;
  captured.add(target);
  capturedAny = true;
  return true;
}

function writable(): boolean {
  if (mode === "read_only") throw new StateReadOnlyError("query must not modify the state");
  return mode === "record";
}

/** The proxy for `value` (or the value itself for primitives, bytes and frozen objects). */
export function guard<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  // The usual case first: a state object guarded before.
  const existing = targetProxy.get(value);
  if (existing !== undefined) return existing as T;
  if (proxyTarget.has(value)) return value;
  if (ArrayBuffer.isView(value) || Object.isFrozen(value)) return value;
  let proxy: object;
  if (value instanceof Map) proxy = new Proxy(value, mapHandler(value));
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
  if (!markCaptured(target)) return;
  const keys = Reflect.ownKeys(target);
  const descriptors = keys.map((key) => [key, Reflect.getOwnPropertyDescriptor(target, key)!] as const);
  const isArray = Array.isArray(target);
  push(undoCapture, target, undefined, true, () => {
    for (const key of Reflect.ownKeys(target)) {
      if (!(isArray && key === "length")) Reflect.deleteProperty(target, key);
    }
    if (isArray) (target as unknown as unknown[]).length = 0;
    for (const [key, descriptor] of descriptors) Reflect.defineProperty(target, key, descriptor);
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
        push(undoProperty, target, "length", true, target.length);
      }
      push(undoProperty, target, key, Object.hasOwn(target, key), target[key]);
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
  if (!markCaptured(target)) return;
  const entries = Array.from(target);
  push(undoCapture, target, undefined, true, () => {
    target.clear();
    for (const [key, value] of entries) target.set(key, value);
  });
}

function* guardedEntries(iterator: Iterable<[unknown, unknown]>): Generator<[unknown, unknown]> {
  for (const [key, value] of iterator) yield [key, guard(value)];
}

function* guardedValues(iterator: Iterable<unknown>): Generator<unknown> {
  for (const value of iterator) yield guard(value);
}

/**
 * The handler of one Map's proxy: its methods are made once per Map (apply reads
 * `accounts.get` on every event; a closure per read was measurable garbage).
 */
function mapHandler(target: Map<unknown, unknown>): ProxyHandler<Map<unknown, unknown>> {
  let receiver: unknown;
  const methods = {
    get: (k: unknown) => guard(target.get(k)),
    set: (k: unknown, value: unknown) => {
      if (writable()) {
        const had = target.has(k);
        push(undoMap, target, k, had, had ? target.get(k) : undefined);
      }
      target.set(k, unguard(value));
      return receiver;
    },
    delete: (k: unknown) => {
      if (writable() && target.has(k)) captureMap(target);
      return target.delete(k);
    },
    clear: () => {
      if (writable() && target.size > 0) captureMap(target);
      target.clear();
    },
    has: (k: unknown) => target.has(k),
    keys: () => target.keys(),
    values: () => guardedValues(target.values()),
    entries: () => guardedEntries(target.entries()),
    forEach: (callback: (value: unknown, key: unknown, map: unknown) => void, thisArg?: unknown) => {
      target.forEach((value, k) => callback.call(thisArg, guard(value), k, receiver));
    },
  };
  return {
    get(target, key, proxy) {
      receiver = proxy;
      switch (key) {
        case "get":
        case "set":
        case "delete":
        case "clear":
        case "has":
        case "keys":
        case "values":
        case "entries":
        case "forEach":
          return methods[key];
        case "size":
          return target.size;
        case Symbol.iterator:
          return methods.entries;
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
}

function captureSet(target: Set<unknown>): void {
  if (!markCaptured(target)) return;
  const members = Array.from(target);
  push(undoCapture, target, undefined, true, () => {
    target.clear();
    for (const member of members) target.add(member);
  });
}

const setHandler: ProxyHandler<Set<unknown>> = {
  get(target, key, receiver) {
    switch (key) {
      case "add":
        return (value: unknown) => {
          const member = unguard(value);
          if (writable() && !target.has(member)) push(undoSet, target, member, false, undefined);
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
  if (mode !== "pass") assert(false, `state transaction opened while ${mode}`);
  assert(undoLength === 0, "undo log not empty at transaction start");
  mode = "record";
}

/** Undo log slots kept for the next transaction. */
const undoKeepMax = 4096;

/** Forgets the undo log (references cleared so the log does not keep old values alive). */
function clearLog(): void {
  if (undoLength > undoKeepMax) {
    // A huge transaction: give the memory back rather than keep a million slots.
    undoKinds.length = undoTargets.length = undoKeys.length = undoHads.length = undoOlds.length = 0;
  } else {
    // A loop, not fill(): most transactions write a handful of records, and three
    // builtin calls per event cost more than the stores (Deno: ~100 ns each).
    for (let i = 0; i < undoLength; i++) {
      undoTargets[i] = undefined as unknown as object;
      undoKeys[i] = undefined;
      undoOlds[i] = undefined;
    }
  }
  undoLength = 0;
  if (capturedAny) {
    captured = new WeakSet();
    capturedAny = false;
  }
}

/** Keeps every write of the transaction. */
export function commitTransaction(): void {
  assert(mode === "record", "commit without a transaction");
  mode = "pass";
  clearLog();
}

/** Undoes every write of the transaction, newest first. Returns the number undone. */
export function rollbackTransaction(): number {
  assert(mode === "record", "rollback without a transaction");
  mode = "pass";
  const count = undoLength;
  try {
    for (let i = count - 1; i >= 0; i--) {
      const key = undoKeys[i];
      const had = undoHads[i]!;
      const old = undoOlds[i];
      switch (undoKinds[i]) {
        case undoProperty: {
          const target = undoTargets[i] as Record<PropertyKey, unknown>;
          if (had) target[key as PropertyKey] = old;
          else delete target[key as PropertyKey];
          break;
        }
        case undoMap: {
          const target = undoTargets[i] as Map<unknown, unknown>;
          if (had) target.set(key, old);
          else target.delete(key);
          break;
        }
        case undoSet:
          if (!had) (undoTargets[i] as Set<unknown>).delete(key);
          break;
        case undoCapture:
          (old as () => void)();
          break;
      }
    }
  } finally {
    clearLog();
  }
  return count;
}

/** Runs `body` with writes through guard proxies forbidden (for queries). */
export function readOnly<T>(body: () => T): T {
  if (mode !== "pass") assert(false, `read-only section entered while ${mode}`);
  mode = "read_only";
  try {
    return body();
  } finally {
    mode = "pass";
  }
}
