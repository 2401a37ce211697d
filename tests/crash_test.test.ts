import { test } from "node:test";
import assert from "node:assert/strict";
import { command } from "../src/cli/commands/crash_test.ts";

test("crash-test slice: 3 SIGKILL rounds lose no acknowledged entry, leave no partial entry, and every bit flip is named", { timeout: 60_000 }, async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.join(" "));
  let code: number;
  try {
    code = await command.run(["--rounds", "3", "--seed", "7", "--flips", "2"]);
  } finally {
    console.log = log;
  }
  assert.equal(code, 0, lines.join("\n"));
  assert.equal(lines.filter((l) => /^round \d+: .* ok$/.test(l)).length, 3, lines.join("\n"));
  assert.ok(lines.some((l) => /3\/3 rounds ok/.test(l)), lines.join("\n"));
});
