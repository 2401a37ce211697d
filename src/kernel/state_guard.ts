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
 * Which proxy stands for an object: one per Map and Set for as long as it lives (their
 * handlers hold a dozen closures, and Maps are the long-lived containers); for plain
 * objects and arrays, one per transaction, made on first access and forgotten at its end.
 * A store that replaces its values on every write (kv: a fresh `{ value, version }` per
 * put) used to get a proxy and two WeakMap entries per value for the value's lifetime:
 * 14% of the kv put's CPU, and WeakMap entries that every collection had to trace. A
 * proxy answers {@link targetKey} with its object, so no table maps proxies back either.
 *
 * A transaction may also carry a {@link WriteWatch} (a snapshot being encoded between
 * transactions, src/kernel/snapshot_job.ts): it hears of every container about to be
 * written, before the write, and of every state object apply is handed raw (bytes, frozen
 * objects, object Map keys, bound builtins): writes the guard cannot see.
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
/** The watch of the open transaction (null: none, or no transaction). */
let watch: WriteWatch | null = null;

/**
 * Told, during a transaction, what apply is about to write and what it may write unseen.
 * Implementations must not throw and must not write the state.
 */
export interface WriteWatch {
  /** `target` (a raw state object, Map, Set or array) is about to be written. */
  beforeWrite(target: object): void;
  /**
   * `map.set(key, …)` is about to run on `target`; `had` and `old` say what the key held
   * (a Map's other writes go to {@link beforeWrite}).
   */
  beforeMapSet(target: Map<unknown, unknown>, key: unknown, had: boolean, old: unknown): void;
  /** Apply is being handed a state object raw: writes into it would not be seen. */
  exposed(): void;
}
/**
 * Counts transactions and read-only sections (each ends with its own number): a cache
 * that a rollback could make stale (it writes the targets directly) lives one number.
 */
let transactionSeq = 0;
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

/**
 * The property key under which every guard proxy answers its target (a raw object has no
 * such property: the read is undefined). Module-private, so no app can name it.
 */
const targetKey: unique symbol = Symbol("chronon.stateGuard.target");

/** The proxy of each Map and Set guarded so far (see the module comment). */
const containerProxy = new WeakMap<object, object>();

// The proxies of the current transaction (or read-only section): target i has proxy i.
// Reused between transactions; a Map takes over past `transactionProxiesScanMax`.
const transactionTargets: object[] = [];
const transactionProxies: object[] = [];
let transactionProxyCount = 0;
let transactionProxyMap: Map<object, object> | null = null;
/** Proxies looked up by a linear scan (most applies touch a handful of objects). */
const transactionProxiesScanMax = 16;

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

/**
 * Whether a write to `target` is to be recorded (in a transaction), telling the watch
 * first; throws in read-only mode.
 */
function writing(target: object): boolean {
  if (!recording()) return false;
  if (watch !== null) watch.beforeWrite(target);
  return true;
}

/** Whether writes are recorded now (in a transaction); throws in read-only mode. */
function recording(): boolean {
  if (mode === "read_only") throw new StateReadOnlyError("query must not modify the state");
  return mode === "record";
}

/** Apply is handed `value` raw when it is an object: the watch must know. */
function exposing(value: unknown): void {
  if (watch !== null && ((typeof value === "object" && value !== null) || typeof value === "function")) watch.exposed();
}

/** The object behind `value` when it is a guard proxy, else undefined. */
function targetOf(value: object): object | undefined {
  return (value as { [targetKey]?: object })[targetKey];
}

/** The proxy this transaction made for `target`, or undefined. */
function transactionProxy(target: object): object | undefined {
  const map = transactionProxyMap;
  if (map !== null) return map.get(target);
  for (let i = 0; i < transactionProxyCount; i++) if (transactionTargets[i] === target) return transactionProxies[i];
  return undefined;
}

function rememberProxy(target: object, proxy: object): void {
  // Outside a transaction nothing would forget it: no app code runs there that could
  // compare two proxies.
  if (mode === "pass") return;
  let map = transactionProxyMap;
  if (map === null && transactionProxyCount < transactionProxiesScanMax) {
    transactionTargets[transactionProxyCount] = target;
    transactionProxies[transactionProxyCount] = proxy;
    transactionProxyCount++;
    return;
  }
  if (map === null) {
    map = transactionProxyMap = new Map();
    for (let i = 0; i < transactionProxyCount; i++) map.set(transactionTargets[i]!, transactionProxies[i]!);
  }
  map.set(target, proxy);
}

/** Forgets the transaction's proxies (they stay usable; the next access makes new ones). */
function forgetProxies(): void {
  for (let i = 0; i < transactionProxyCount; i++) {
    transactionTargets[i] = undefined as unknown as object;
    transactionProxies[i] = undefined as unknown as object;
  }
  transactionProxyCount = 0;
  transactionProxyMap = null;
}

/** The proxy for `value` (or the value itself for primitives, bytes and frozen objects). */
export function guard<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  // Within one transaction an object always gets the same proxy (apply may compare them).
  const existing = transactionProxy(value);
  if (existing !== undefined) return existing as T;
  const target = targetOf(value);
  if (target !== undefined) {
    // A proxy the app stored inside a fresh object: it stands for its target from now on.
    const known = transactionProxy(target);
    if (known !== undefined) return known as T;
    rememberProxy(target, value);
    return value;
  }
  if (ArrayBuffer.isView(value) || Object.isFrozen(value)) {
    if (watch !== null) watch.exposed();
    return value;
  }
  let proxy: object;
  if (value instanceof Map) {
    proxy = containerProxy.get(value) ?? newContainerProxy(value, mapHandler(value));
  } else if (value instanceof Set) {
    proxy = containerProxy.get(value) ?? newContainerProxy(value, setHandler);
  } else proxy = new Proxy(value as Record<PropertyKey, unknown>, objectHandler);
  rememberProxy(value, proxy);
  return proxy as T;
}

function newContainerProxy<T extends object>(target: T, handler: ProxyHandler<T>): object {
  const proxy = new Proxy(target, handler);
  containerProxy.set(target, proxy);
  return proxy;
}

/** The object behind a guard proxy (or `value` unchanged). */
export function unguard<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  return (targetOf(value) ?? value) as T;
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
    if (key === targetKey) return target;
    const value = target[key];
    if (typeof value === "object" && value !== null) return guard(value);
    return value;
  },
  set(target, key, value) {
    if (writing(target)) {
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
    if (writing(target) && Object.hasOwn(target, key)) captureObject(target);
    return Reflect.deleteProperty(target, key);
  },
  defineProperty(target, key, descriptor) {
    if (writing(target)) captureObject(target);
    const copy = { ...descriptor };
    if ("value" in copy) copy.value = unguard(copy.value);
    return Reflect.defineProperty(target, key, copy);
  },
  setPrototypeOf() {
    throw new TypeError("apply must not change the prototype of state objects");
  },
};

/**
 * A descriptor's value is the raw object (`Object.getOwnPropertyDescriptor(proxy, k)
 * .value`): a write into it escapes the undo log, as it always did, and a snapshot in
 * progress, which must not. This trap tells the watch; it is on the handler only while
 * a snapshot job runs, because any trap of this kind halves the speed of for-in and
 * Object.keys over a proxy (they call it once per key), and it returns the descriptor
 * unchanged, so apply sees the same with it or without.
 */
function descriptorTrap(target: Record<PropertyKey, unknown>, key: PropertyKey): PropertyDescriptor | undefined {
  const descriptor = Reflect.getOwnPropertyDescriptor(target, key);
  if (watch !== null && descriptor !== undefined) exposing(descriptor.value ?? descriptor.get ?? descriptor.set);
  return descriptor;
}

/** Snapshot jobs running (in this process: the simulator runs several executors). */
let descriptorWatchers = 0;

/** A snapshot job starts: descriptors handed to apply are watched until {@link unwatchDescriptors}. */
export function watchDescriptors(): void {
  if (descriptorWatchers++ === 0) objectHandler.getOwnPropertyDescriptor = descriptorTrap;
}

/** A snapshot job ended (once per {@link watchDescriptors}). */
export function unwatchDescriptors(): void {
  assert(descriptorWatchers > 0, "descriptor watch stopped once per start");
  if (--descriptorWatchers === 0) delete objectHandler.getOwnPropertyDescriptor;
}

function captureMap(target: Map<unknown, unknown>): void {
  if (!markCaptured(target)) return;
  const entries = Array.from(target);
  push(undoCapture, target, undefined, true, () => {
    target.clear();
    for (const [key, value] of entries) target.set(key, value);
  });
}

function* guardedEntries(iterator: Iterable<[unknown, unknown]>): Generator<[unknown, unknown]> {
  for (const [key, value] of iterator) {
    exposing(key);
    yield [key, guard(value)];
  }
}

function* watchedKeys(iterator: Iterable<unknown>): Generator<unknown> {
  for (const key of iterator) {
    exposing(key);
    yield key;
  }
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
  // The last get of this transaction, while no write to the Map came after it: the usual
  // read-modify-write (`m.set(k, f(m.get(k)))`) then costs two lookups in a large Map,
  // not three. Strict equality, not SameValueZero: NaN only misses the shortcut.
  let lastGetKey: unknown;
  let lastGetValue: unknown;
  let lastGetTransaction = -1;
  const methods = {
    get: (k: unknown) => {
      const value = target.get(k);
      lastGetKey = k;
      lastGetValue = value;
      lastGetTransaction = transactionSeq;
      return guard(value);
    },
    set: (k: unknown, value: unknown) => {
      if (recording()) {
        let old: unknown;
        let had: boolean;
        if (lastGetTransaction === transactionSeq && lastGetKey === k) {
          old = lastGetValue;
          had = old !== undefined || target.has(k);
        } else {
          old = target.get(k);
          had = old !== undefined || target.has(k);
        }
        if (watch !== null) watch.beforeMapSet(target, k, had, old);
        push(undoMap, target, k, had, old);
      }
      lastGetTransaction = -1;
      target.set(k, unguard(value));
      return receiver;
    },
    delete: (k: unknown) => {
      lastGetTransaction = -1;
      if (recording() && target.has(k)) {
        watch?.beforeWrite(target);
        captureMap(target);
      }
      return target.delete(k);
    },
    clear: () => {
      lastGetTransaction = -1;
      if (recording() && target.size > 0) {
        watch?.beforeWrite(target);
        captureMap(target);
      }
      target.clear();
    },
    has: (k: unknown) => target.has(k),
    keys: () => (watch !== null ? watchedKeys(target.keys()) : target.keys()),
    values: () => guardedValues(target.values()),
    entries: () => guardedEntries(target.entries()),
    forEach: (callback: (value: unknown, key: unknown, map: unknown) => void, thisArg?: unknown) => {
      target.forEach((value, k) => {
        exposing(k);
        callback.call(thisArg, guard(value), k, receiver);
      });
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
        case targetKey:
          return target;
        default: {
          // Anything else is the raw Map's (a method bound to it writes unseen).
          const value = Reflect.get(target, key, target);
          exposing(value);
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
          if (writing(target) && !target.has(member)) push(undoSet, target, member, false, undefined);
          target.add(member);
          return receiver;
        };
      case "delete":
        return (value: unknown) => {
          const member = unguard(value);
          if (writing(target) && target.has(member)) captureSet(target);
          return target.delete(member);
        };
      case "clear":
        return () => {
          if (writing(target) && target.size > 0) captureSet(target);
          target.clear();
        };
      case "has":
        return (value: unknown) => target.has(unguard(value));
      case "size":
        return target.size;
      case targetKey:
        return target;
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
        exposing(value);
        return typeof value === "function" ? value.bind(target) : value;
      }
    }
  },
  set() {
    throw new TypeError("apply must not set properties on a Set (use set.add)");
  },
};

/**
 * Opens a transaction: writes through guard proxies are recorded until commit/rollback,
 * and told to `writeWatch` first when there is one.
 */
export function beginTransaction(writeWatch: WriteWatch | null = null): void {
  if (mode !== "pass") assert(false, `state transaction opened while ${mode}`);
  watch = writeWatch;
  assert(undoLength === 0, "undo log not empty at transaction start");
  assert(transactionProxyCount === 0 && transactionProxyMap === null, "no proxies left from the last transaction");
  mode = "record";
  transactionSeq++;
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
  transactionSeq++;
  watch = null;
  forgetProxies();
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
    transactionSeq++;
    forgetProxies();
  }
}
