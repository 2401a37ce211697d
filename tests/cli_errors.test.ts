/**
 * The command line names bad input in one line and exits 2, never with a stack trace: an
 * unknown command, an option a command does not know, an application that will not load.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { main } from "../src/cli/main.ts";

/** Runs `chronon ARGV…` in this process; resolves to its exit code and what it printed to stderr. */
async function run(argv: string[]): Promise<{ code: number; stderr: string }> {
  const original = console.error;
  const lines: string[] = [];
  console.error = (...parts: unknown[]) => {
    lines.push(parts.map(String).join(" "));
  };
  try {
    return { code: await main(argv), stderr: lines.join("\n") };
  } finally {
    console.error = original;
  }
}

test("an unknown command, an unknown option and an application that will not load are one line each, exit 2", async () => {
  const unknown = await run(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);

  const option = await run(["bench", "kernel", "--bogus"]);
  assert.equal(option.code, 2);
  assert.match(option.stderr.split("\n")[0]!, /^chronon bench: Unknown option '--bogus'/);

  const app = await run(["sim", "--app", "no/such/app.ts", "--seeds", "1"]);
  assert.equal(app.code, 2);
  assert.match(app.stderr, /^chronon sim: cannot load the application no\/such\/app\.ts/);
  assert.doesNotMatch(app.stderr, /\n\s+at /, "no stack trace");
});
