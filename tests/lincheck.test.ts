import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  casRegister, check, eventsFromOperations, HistoryError, kv, kvCas, operationsFromEvents, parseEtcdEvents, parseEtcdLog,
  parseKvEdn, parseKvEvents, writeEtcdLog, writeKvEdn,
} from "../src/sim/lincheck/mod.ts";
import type {
  HistoryEvent, KvCasInput, KvCasOutput, KvInput, KvOutput, RegisterInput, RegisterOutput,
} from "../src/sim/lincheck/mod.ts";
import { command } from "../src/cli/commands/lincheck.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const testdata = join(repoRoot, "..", "shared", "testdata");
const requireTestdata = () =>
  assert.ok(existsSync(join(testdata, "jepsen-etcd", "VERDICTS.tsv")), `the Jepsen test histories are missing: expected ${testdata}/jepsen-etcd/VERDICTS.tsv (CI provides ../shared/testdata next to the repository)`);

type RegEvent = HistoryEvent<RegisterInput, RegisterOutput>;
const read = (client: number, time: number): RegEvent => ({ kind: "invoke", client, time, input: { f: "read" } });
const write = (client: number, value: number, time: number): RegEvent => ({ kind: "invoke", client, time, input: { f: "write", value } });
const cas = (client: number, expected: number | null, value: number, time: number): RegEvent => ({ kind: "invoke", client, time, input: { f: "cas", expected, value } });
const ok = (client: number, output: RegisterOutput, time: number): RegEvent => ({ kind: "ok", client, time, output });
const info = (client: number, time: number): RegEvent => ({ kind: "info", client, time });
const fail = (client: number, time: number): RegEvent => ({ kind: "fail", client, time });
const reg = (events: RegEvent[]) => check(casRegister, operationsFromEvents(events));

describe("Jepsen test data", () => {
  test("every etcd history gets the verdict VERDICTS.tsv lists, each in seconds", () => {
    requireTestdata();
    const verdicts = readFileSync(join(testdata, "jepsen-etcd", "VERDICTS.tsv"), "utf8").trim().split("\n");
    const logs = readdirSync(join(testdata, "jepsen-etcd")).filter((f) => f.endsWith(".log"));
    assert.equal(verdicts.length, logs.length, "one verdict per log file");
    const seen = new Set<string>();
    for (const line of verdicts) {
      const [file, expected] = line.split("\t");
      assert.ok(expected === "linearizable" || expected === "not-linearizable", `verdict line '${line}'`);
      seen.add(expected);
      const started = performance.now();
      const result = check(casRegister, parseEtcdLog(readFileSync(join(testdata, "jepsen-etcd", file!), "utf8")));
      const ms = performance.now() - started;
      assert.equal(result.kind, expected, `${file}: ${result.explanation}`);
      assert.equal(result.ok, expected === "linearizable");
      assert.ok(ms < 5000, `${file} took ${ms.toFixed(0)} ms`);
    }
    assert.equal(seen.size, 2, "the data holds both verdicts");
  });

  test("the kv histories: *-ok are linearizable, *-bad are not, naming the key", () => {
    requireTestdata();
    for (const name of ["c01-ok", "c01-bad", "c10-ok", "c10-bad"]) {
      const history = parseKvEdn(readFileSync(join(testdata, "kv", `${name}.txt`), "utf8"));
      const result = check(kv, history);
      assert.equal(result.kind, name.endsWith("ok") ? "linearizable" : "not-linearizable", `${name}: ${result.explanation}`);
      assert.ok(result.partitionCount > 1, "partitioned by key");
      if (!result.ok) {
        assert.equal(typeof result.partition, "string");
        assert.ok(result.explanation.includes(`for key ${JSON.stringify(result.partition)}`), result.explanation);
      }
    }
  });
});

describe("cas register", () => {
  test("a stale read after a completed write is caught, and the explanation names the read", () => {
    const result = reg([write(1, 5, 1), ok(1, "ok", 2), read(2, 3), ok(2, null, 4)]);
    assert.equal(result.kind, "not-linearizable");
    assert.equal(result.ok, false);
    assert.match(result.explanation, /client 2 read → nil \[call 3, return 4\]/);
    assert.deepEqual(result.violation?.deadline, { client: 2, input: { f: "read" }, output: null, call: 3, return: 4 });
    assert.equal(result.violation?.prefix.length, 1);
    assert.equal(result.violation?.stateAfterPrefix, "register = 5");
  });

  test("concurrent overlapping operations that can be ordered pass", () => {
    assert.equal(reg([write(1, 5, 1), read(2, 2), ok(2, 5, 3), ok(1, "ok", 4)]).kind, "linearizable");
    assert.equal(reg([write(1, 5, 1), read(2, 2), ok(2, null, 3), ok(1, "ok", 4)]).kind, "linearizable");
    // Two overlapping writes, then reads that fix their order: 1 then 2.
    const both = [write(1, 1, 1), write(2, 2, 2), ok(1, "ok", 3), ok(2, "ok", 4)];
    assert.equal(reg([...both, read(3, 5), ok(3, 2, 6)]).kind, "linearizable");
    assert.equal(reg([...both, read(3, 5), ok(3, 1, 6)]).kind, "linearizable");
    // ...but once a read saw 2 after both returned, a later read of 1 is stale.
    assert.equal(reg([...both, read(3, 5), ok(3, 2, 6), read(3, 7), ok(3, 1, 8)]).kind, "not-linearizable");
  });

  test("an :info write that must have happened for a later read passes; so does one never observed", () => {
    assert.equal(reg([write(1, 7, 1), info(1, 2), read(2, 3), ok(2, 7, 4)]).kind, "linearizable");
    assert.equal(reg([write(1, 7, 1), info(1, 2), read(2, 3), ok(2, null, 4)]).kind, "linearizable");
    // No completion at all is the same as :info; it may take effect long after its call.
    assert.equal(reg([write(1, 7, 1), read(2, 3), ok(2, null, 4), read(2, 5), ok(2, 7, 6)]).kind, "linearizable");
    // But not before its call.
    assert.equal(reg([read(2, 1), ok(2, 7, 2), write(1, 7, 3), info(1, 4)]).kind, "not-linearizable");
  });

  test("a :fail write whose value is read is a violation", () => {
    const result = reg([write(1, 7, 1), fail(1, 2), read(2, 3), ok(2, 7, 4)]);
    assert.equal(result.kind, "not-linearizable");
    assert.equal(result.operationCount, 1, "the failed write is dropped");
    assert.match(result.explanation, /client 2 read → 7/);
  });

  test("cas succeeds only on the expected value; an unknown cas may or may not have happened", () => {
    assert.equal(reg([write(1, 1, 1), ok(1, "ok", 2), cas(2, 1, 2, 3), ok(2, "ok", 4), read(3, 5), ok(3, 2, 6)]).kind, "linearizable");
    assert.equal(reg([cas(2, null, 4, 1), ok(2, "ok", 2), read(3, 3), ok(3, 4, 4)]).kind, "linearizable", "cas from nil");
    const wrong = reg([write(1, 1, 1), ok(1, "ok", 2), cas(2, 3, 2, 3), ok(2, "ok", 4)]);
    assert.equal(wrong.kind, "not-linearizable");
    assert.match(wrong.explanation, /Impossible next: client 2 cas 3→2/);
    const unknown = [write(1, 1, 1), ok(1, "ok", 2), cas(2, 1, 2, 3), info(2, 4)];
    assert.equal(reg([...unknown, read(3, 5), ok(3, 2, 6)]).kind, "linearizable");
    assert.equal(reg([...unknown, read(3, 5), ok(3, 1, 6)]).kind, "linearizable");
    assert.equal(reg([...unknown, read(3, 5), ok(3, 2, 6), read(3, 7), ok(3, 1, 8)]).kind, "not-linearizable");
  });

  test("a search past its step budget answers unknown with a clear message", () => {
    const events: RegEvent[] = [];
    for (let c = 0; c < 14; c++) events.push(write(c, c, c));
    for (let c = 0; c < 14; c++) events.push(ok(c, "ok", 100 + c));
    events.push(read(99, 200), ok(99, 1000, 201));
    const bounded = check(casRegister, operationsFromEvents(events), { stepsMax: 1000 });
    assert.equal(bounded.kind, "unknown");
    assert.equal(bounded.ok, false);
    assert.equal(bounded.steps, 1000);
    assert.match(bounded.explanation, /gave up after 1000 steps/);
    // With the default budget the memoization finds the violation quickly.
    assert.equal(check(casRegister, operationsFromEvents(events)).kind, "not-linearizable");
  });
});

/** A deterministic PRNG (mulberry32) for generated histories. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A history of `clients` clients doing `perClient` register operations each, every one
 * taking effect at a random instant between its invocation and its completion, so it is
 * linearizable by construction; about 5% end in :info (half of them took effect).
 */
function generateRegisterHistory(seed: number, clients: number, perClient: number): RegEvent[] {
  const random = prng(seed);
  const events: RegEvent[] = [];
  let register: number | null = null;
  let nextValue = 1;
  const state = Array.from({ length: clients }, () => ({ done: 0, open: null as RegisterInput | null, applied: false, output: null as RegisterOutput | "fail" }));
  for (let time = 1; state.some((s) => s.done < perClient || s.open !== null); time++) {
    const client = Math.floor(random() * clients);
    const s = state[client]!;
    if (s.open === null) {
      if (s.done === perClient) continue;
      const pick = random();
      s.open = pick < 0.4 ? { f: "read" } : pick < 0.7 ? { f: "write", value: nextValue++ } : { f: "cas", expected: register === null ? null : Math.floor(random() * nextValue), value: nextValue++ };
      s.applied = false;
      events.push({ kind: "invoke", client, time, input: s.open });
    } else if (!s.applied) {
      const input = s.open;
      if (input.f === "read") s.output = register;
      else if (input.f === "write") (register = input.value), (s.output = "ok");
      else if (register === input.expected) (register = input.value), (s.output = "ok");
      else s.output = "fail";
      s.applied = true;
    } else {
      const unknown = random() < 0.05;
      events.push(unknown ? info(client, time) : s.output === "fail" ? fail(client, time) : ok(client, s.output, time));
      s.open = null;
      s.done++;
    }
  }
  return events;
}

describe("generated histories", () => {
  test("5 clients × 50 operations: linearizable by construction, checked in under a second; one corrupted read is caught", () => {
    for (const seed of [1, 2, 3]) {
      const events = generateRegisterHistory(seed, 5, 50);
      const operations = operationsFromEvents(events);
      const started = performance.now();
      const result = check(casRegister, operations);
      const ms = performance.now() - started;
      assert.equal(result.kind, "linearizable", `seed ${seed}: ${result.explanation}`);
      assert.ok(ms < 1000, `seed ${seed} took ${ms.toFixed(0)} ms`);
      const index = events.findIndex((e, i) => e.kind === "ok" && i > events.length / 2 && typeof e.output === "number");
      assert.ok(index > 0);
      const corrupt = events.map((e, i) => (i === index ? { ...e, output: 999_999 } as RegEvent : e));
      const bad = check(casRegister, operationsFromEvents(corrupt));
      assert.equal(bad.kind, "not-linearizable", `seed ${seed}`);
      assert.match(bad.explanation, /read → 999999/);
    }
  });
});

describe("key-value models", () => {
  type CasEvent = HistoryEvent<KvCasInput, KvCasOutput>;
  const inv = (client: number, time: number, input: KvCasInput): CasEvent => ({ kind: "invoke", client, time, input });
  const done = (client: number, time: number, output: KvCasOutput): CasEvent => ({ kind: "ok", client, time, output });

  test("kvCas: a missing key reads null, cas swaps only on the expected value, keys are independent", () => {
    const history = [
      inv(1, 1, { f: "get", key: "a" }), done(1, 2, null),
      inv(1, 3, { f: "cas", key: "a", expected: null, value: 1 }), done(1, 4, true),
      inv(2, 5, { f: "cas", key: "a", expected: null, value: 2 }), done(2, 6, false),
      inv(2, 7, { f: "put", key: "b", value: 9 }), done(2, 8, "ok"),
      inv(3, 9, { f: "get", key: "a" }), done(3, 10, 1),
      inv(3, 11, { f: "get", key: "b" }), done(3, 12, 9),
    ];
    const good = check(kvCas, operationsFromEvents(history));
    assert.equal(good.kind, "linearizable", good.explanation);
    assert.equal(good.partitionCount, 2);
    // A cas that answers false although the value matched is a violation on key a.
    const lying = [...history, inv(4, 13, { f: "cas", key: "a", expected: 1, value: 5 }), done(4, 14, false)];
    const bad = check(kvCas, operationsFromEvents(lying));
    assert.equal(bad.kind, "not-linearizable");
    assert.equal(bad.partition, "a");
    assert.match(bad.explanation, /client 4 cas "a" 1→5 → false/);
  });

  test("kv: append concatenates, a missing key reads as the empty string", () => {
    type KvEvent = HistoryEvent<KvInput, KvOutput>;
    const history: KvEvent[] = [
      { kind: "invoke", client: 0, time: 1, input: { f: "get", key: "k" } }, { kind: "ok", client: 0, time: 2, output: "" },
      { kind: "invoke", client: 0, time: 3, input: { f: "append", key: "k", value: "x" } }, { kind: "ok", client: 0, time: 4, output: "ok" },
      { kind: "invoke", client: 1, time: 5, input: { f: "append", key: "k", value: "y" } },
      { kind: "invoke", client: 0, time: 6, input: { f: "get", key: "k" } }, { kind: "ok", client: 0, time: 7, output: "xy" },
    ];
    assert.equal(check(kv, operationsFromEvents(history)).kind, "linearizable");
    const wrong = history.map((e, i) => (i === history.length - 1 ? { ...e, output: "yx" } as KvEvent : e));
    assert.equal(check(kv, operationsFromEvents(wrong)).kind, "not-linearizable");
  });
});

describe("history forms and Jepsen formats", () => {
  test("operations and events convert both ways", () => {
    const events = generateRegisterHistory(7, 3, 10);
    const operations = operationsFromEvents(events);
    assert.ok(operations.some((o) => o.return === undefined), "the sample has unknown outcomes");
    const back = operationsFromEvents(eventsFromOperations(operations));
    const byCall = (list: typeof operations) => [...list].sort((a, b) => a.call - b.call);
    assert.deepEqual(byCall(back), byCall(operations));
  });

  test("pairing errors are named", () => {
    assert.throws(() => operationsFromEvents([read(1, 1), read(1, 2)]), /event 1 \(time 2\): client 1 invokes while/);
    assert.throws(() => operationsFromEvents([ok(1, 3, 1)]), /completes \(ok\) an operation it never invoked/);
    assert.throws(() => operationsFromEvents([read(1, 5), ok(1, 3, 4)]), /before the previous event/);
  });

  test("the etcd log format round-trips, skipping lines that are not events", () => {
    const events = generateRegisterHistory(11, 4, 12).map((e, i) => ({ ...e, time: i + 1 }));
    const text = writeEtcdLog(events);
    assert.deepEqual(parseEtcdEvents(text), events);
    const noisy = "INFO  jepsen.core - Running test\n" + text.split("\n").join("\n");
    assert.deepEqual(parseEtcdLog(noisy).length, operationsFromEvents(events).length);
    assert.match(text, /^INFO {2}jepsen\.util - \d+\t:invoke\t:(read|write|cas)\t/);
  });

  test("the kv EDN format round-trips, quotes included", () => {
    type KvEvent = HistoryEvent<KvInput, KvOutput>;
    const events: KvEvent[] = [
      { kind: "invoke", client: 0, time: 1, input: { f: "append", key: "k", value: "x \"1\" \\ y" } },
      { kind: "ok", client: 0, time: 2, output: "ok" },
      { kind: "invoke", client: 1, time: 3, input: { f: "get", key: "k" } },
      { kind: "ok", client: 1, time: 4, output: "x \"1\" \\ y" },
      { kind: "invoke", client: 2, time: 5, input: { f: "put", key: "j", value: "v" } },
      { kind: "info", client: 2, time: 6 },
      { kind: "invoke", client: 3, time: 7, input: { f: "get", key: "j" } },
      { kind: "fail", client: 3, time: 8 },
    ];
    const text = writeKvEdn(events);
    assert.deepEqual(parseKvEvents(text), events);
    assert.equal(check(kv, parseKvEdn(text)).kind, "linearizable");
  });

  test("parse errors name the line and what is wrong", () => {
    const etcd = "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nsome other log line\nINFO  jepsen.util - 2\t:invoke\t:cas\t[1]\n";
    assert.throws(() => parseEtcdLog(etcd), (e: unknown) => e instanceof HistoryError && /line 3: cas argument '\[1\]'/.test(e.message));
    assert.throws(() => parseEtcdLog("INFO  jepsen.util - 1\t:invoke\t:frob\t1\n"), /line 1: operation ':frob'/);
    assert.throws(() => parseEtcdLog("INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\tx\n"), /line 2: value read 'x'/);
    assert.throws(() => parseEtcdLog("INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\n"), /line 2: client 1 invokes while/);
    assert.throws(() => parseKvEdn('{:process 0, :type :invoke, :f :get, :key "0", :value nil}\n\n{:process 0, :type :ok, :key "0"}\n'), /line 3: the map has no :f/);
    assert.throws(() => parseKvEdn('{:process 0, :type :invoke, :f :get, :key "0\n'), /line 1, column \d+: unterminated string/);
    assert.throws(() => parseKvEdn("not edn\n"), /line 1, column 1: expected an EDN map/);
  });
});

describe("chronon lincheck", () => {
  test("exit codes: 0 all linearizable, 1 a violation, 2 a parse error or usage error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lincheck-"));
    const log = console.log;
    const error = console.error;
    const printed: string[] = [];
    console.log = (...args: unknown[]) => void printed.push(args.join(" "));
    console.error = console.log;
    try {
      const good = join(dir, "good.log");
      const bad = join(dir, "bad.log");
      const broken = join(dir, "broken.log");
      writeFileSync(good, writeEtcdLog([write(1, 5, 1), ok(1, "ok", 2), read(2, 3), ok(2, 5, 4)]));
      writeFileSync(bad, writeEtcdLog([write(1, 5, 1), ok(1, "ok", 2), read(2, 3), ok(2, null, 4)]));
      writeFileSync(broken, "INFO  jepsen.util - 1\t:invoke\t:write\tfive\n");
      assert.equal(await command.run(["--model", "cas-register", good]), 0);
      assert.match(printed.join("\n"), /good\.log: linearizable \(2 operations, 1 partition\(s\), \d+ steps, [\d.]+ ms\)/);
      assert.equal(await command.run(["--model", "cas-register", good, bad]), 1);
      assert.match(printed.join("\n"), /bad\.log: not-linearizable[^\n]*\n {2}not linearizable: .*client 2 read → nil \[call 3, return 4\]/);
      assert.equal(await command.run(["--model", "cas-register", good, broken]), 2);
      assert.match(printed.join("\n"), /broken\.log: error: line 1: written value 'five'/);
      printed.length = 0;
      assert.equal(await command.run(["--model", "cas-register", "--json", bad]), 1);
      const json = JSON.parse(printed[0]!) as { kind: string; ok: boolean; ms: number };
      assert.equal(json.kind, "not-linearizable");
      assert.equal(json.ok, false);
      assert.equal(typeof json.ms, "number");
      await assert.rejects(command.run(["--model", "queue", good]), /--model must be cas-register or kv/);
      await assert.rejects(command.run(["--model", "kv"]), /at least one history file/);
    } finally {
      console.log = log;
      console.error = error;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
