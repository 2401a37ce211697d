import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { sameRuntimeCommand } from "../src/cli/commands/storage_common.ts";

// The README's first command: a durable bank crashed with SIGKILL mid-run must lose no
// acknowledged transfer and apply every webhook exactly once at the idempotent sink.
test("chronon demo-one-node survives a SIGKILL with nothing lost or applied twice", { timeout: 120_000 }, () => {
  const { command, args, cwd } = sameRuntimeCommand(["demo-one-node", "--seconds", "3"]);
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 110_000 });
  const output = `${result.stdout}\n${result.stderr}`;
  assert.equal(result.status, 0, output);
  assert.match(output, /SIGKILL sent mid-write/);
  assert.match(output, /ok {3}acknowledged transfers lost in the crash: 0/);
  assert.match(output, /ok {3}duplicate applications at the sink: 0/);
  assert.match(output, /demo: every check holds/);
});

// The README's first command: a three-replica cluster whose primary is SIGKILLed halfway
// must elect a new primary, lose no acknowledged transfer, and apply every webhook once.
test("chronon demo: a 3-replica cluster loses nothing and applies nothing twice when its primary is killed", { timeout: 170_000 }, () => {
  const { command, args, cwd } = sameRuntimeCommand(["demo", "--seconds", "8", "--clients", "4"]);
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 160_000 });
  const output = `${result.stdout}\n${result.stderr}`;
  assert.equal(result.status, 0, output);
  assert.match(output, /SIGKILL sent to the primary/);
  assert.match(output, /is primary of view \d+ after \d+ ms/);
  assert.match(output, /ok {3}missing effects: 0/);
  assert.match(output, /ok {3}duplicate applications at the sink: 0/);
  assert.match(output, /ok {3}balances conserved/);
  assert.match(output, /demo: every check holds/);
});
