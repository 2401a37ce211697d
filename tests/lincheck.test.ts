import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  casRegister, check, kv, operationsFromEvents, parseEtcdLog, parseKvEdn, writeEtcdLog, writeKvEdn,
} from "../src/sim/lincheck/mod.ts";
import type { HistoryEvent, KvInput, KvOutput, RegisterInput, RegisterOutput } from "../src/sim/lincheck/mod.ts";

const testdata = join(fileURLToPath(new URL("..", import.meta.url)), "..", "shared", "testdata");

test("every Jepsen etcd history gets its listed verdict, each within a second", () => {
  assert.ok(existsSync(testdata), `the Jepsen histories are expected at ${testdata}`);
  const verdicts = readFileSync(join(testdata, "jepsen-etcd", "VERDICTS.tsv"), "utf8").trim().split("\n");
  assert.ok(verdicts.length >= 50);
  for (const line of verdicts) {
    const [file, expected] = line.split("\t");
    const started = performance.now();
    const result = check(casRegister, parseEtcdLog(readFileSync(join(testdata, "jepsen-etcd", file!), "utf8")));
    assert.equal(result.verdict, expected, `${file}: ${result.explanation}`);
    assert.ok(performance.now() - started < 5000, `${file} took ${performance.now() - started} ms`);
  }
});

test("the kv histories: *-ok are linearizable, *-bad are not", () => {
  for (const name of ["c01-ok", "c01-bad", "c10-ok", "c10-bad"]) {
    const result = check(kv, parseKvEdn(readFileSync(join(testdata, "kv", `${name}.txt`), "utf8")));
    assert.equal(result.verdict, name.endsWith("ok") ? "linearizable" : "not-linearizable", `${name}: ${result.explanation}`);
  }
});

const reg = (events: HistoryEvent<RegisterInput, RegisterOutput>[]) => check(casRegister, operationsFromEvents(events));
const read = (client: number, time: number): HistoryEvent<RegisterInput, RegisterOutput> => ({ kind: "invoke", client, input: { f: "read" }, time });
const write = (client: number, value: number, time: number): HistoryEvent<RegisterInput, RegisterOutput> => ({ kind: "invoke", client, input: { f: "write", value }, time });
const ok = (client: number, output: RegisterOutput, time: number): HistoryEvent<RegisterInput, RegisterOutput> => ({ kind: "ok", client, output, time });

test("a stale read after a completed write is caught and the read is named", () => {
  const result = reg([write(1, 5, 1), ok(1, "ok", 2), read(2, 3), ok(2, null, 4)]);
  assert.equal(result.verdict, "not-linearizable");
  assert.match(result.explanation, /client 2: read → nil/);
});

test("overlapping operations that can be ordered pass", () => {
  assert.equal(reg([write(1, 5, 1), read(2, 2), ok(2, 5, 3), ok(1, "ok", 4)]).verdict, "linearizable");
  assert.equal(reg([write(1, 5, 1), read(2, 2), ok(2, null, 3), ok(1, "ok", 4)]).verdict, "linearizable");
});

test("an unknown-outcome write may have happened; a failed one may not be read", () => {
  const info = reg([write(1, 7, 1), { kind: "info", client: 1, time: 2 }, read(2, 3), ok(2, 7, 4)]);
  assert.equal(info.verdict, "linearizable");
  const never = reg([write(1, 7, 1), { kind: "info", client: 1, time: 2 }, read(2, 3), ok(2, null, 4)]);
  assert.equal(never.verdict, "linearizable");
  const failed = reg([write(1, 7, 1), { kind: "fail", client: 1, time: 2 }, read(2, 3), ok(2, 7, 4)]);
  assert.equal(failed.verdict, "not-linearizable");
});

test("cas succeeds only on the expected value", () => {
  const cas = (client: number, expected: number, value: number, time: number): HistoryEvent<RegisterInput, RegisterOutput> => ({ kind: "invoke", client, input: { f: "cas", expected, value }, time });
  assert.equal(reg([write(1, 1, 1), ok(1, "ok", 2), cas(2, 1, 2, 3), ok(2, "ok", 4), read(3, 5), ok(3, 2, 6)]).verdict, "linearizable");
  assert.equal(reg([write(1, 1, 1), ok(1, "ok", 2), cas(2, 3, 2, 3), ok(2, "ok", 4)]).verdict, "not-linearizable");
});

test("a search past its step budget answers unknown instead of hanging", () => {
  const events: HistoryEvent<RegisterInput, RegisterOutput>[] = [];
  for (let c = 0; c < 12; c++) events.push(write(c, c, c));
  for (let c = 0; c < 12; c++) events.push(ok(c, "ok", 100 + c));
  events.push(read(99, 200), ok(99, 1000, 201));
  const result = check(casRegister, operationsFromEvents(events), { stepsMax: 1000 });
  assert.equal(result.verdict, "unknown");
});

test("histories written in Jepsen's formats parse back to the same operations", () => {
  const register: HistoryEvent<RegisterInput, RegisterOutput>[] = [
    read(4, 1), ok(4, null, 2), write(1, 3, 3), { kind: "info", client: 1, time: 4 },
    { kind: "invoke", client: 2, input: { f: "cas", expected: 3, value: 4 }, time: 5 }, { kind: "fail", client: 2, time: 6 },
  ];
  const parsed = parseEtcdLog(writeEtcdLog(register));
  assert.deepEqual(parsed.map((o) => [o.client, o.input, o.output, Number.isFinite(o.return)]), [
    [4, { f: "read" }, null, true],
    [1, { f: "write", value: 3 }, undefined, false],
  ]);
  const kvEvents: HistoryEvent<KvInput, KvOutput>[] = [
    { kind: "invoke", client: 0, input: { f: "append", key: "k", value: "x \"1\" y" }, time: 1 },
    { kind: "ok", client: 0, output: "ok", time: 2 },
    { kind: "invoke", client: 1, input: { f: "get", key: "k" }, time: 3 },
    { kind: "ok", client: 1, output: "x \"1\" y", time: 4 },
  ];
  const back = parseKvEdn(writeKvEdn(kvEvents));
  assert.deepEqual(back.map((o) => [o.client, o.input, o.output]), [
    [0, { f: "append", key: "k", value: "x \"1\" y" }, "ok"],
    [1, { f: "get", key: "k" }, "x \"1\" y"],
  ]);
  assert.equal(check(kv, back).verdict, "linearizable");
});
