import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { casRegister, check, checkStepsMaxDefault, HistoryError, kv, parseEtcdLog, parseKvEdn } from "../../sim/lincheck/mod.ts";
import type { CheckKind, CheckResult } from "../../sim/lincheck/mod.ts";

const usage = `chronon lincheck --model cas-register|kv FILE... [--json] [--steps N]

Checks each history file for linearizability and prints, per file, \`linearizable\`,
\`not-linearizable\` (with a short explanation naming the operation that cannot be
placed) or \`unknown\` (the search ran out of budget), and the milliseconds it took.

  --model cas-register   Jepsen's etcd log of a compare-and-set register
                         (INFO  jepsen.util - 4<TAB>:invoke<TAB>:read<TAB>nil)
  --model kv             EDN maps of a key-value store with get/put/append, one a line
                         ({:process 0, :type :invoke, :f :append, :key "0", :value "x"})
  --steps N              search budget in steps (default ${checkStepsMaxDefault}); past it
                         the verdict is \`unknown\`
  --json                 one JSON object per file (no summary line)

Exit code 0 when every file is linearizable, 1 when any is not, 2 on a usage error or a
file that cannot be read or parsed, 3 when a search ran out of budget (and none is 1 or 2).
Times in explanations are file line numbers.`;

/** Exit code for the worst outcome seen: parse error 2 > violation 1 > unknown 3 > ok 0. */
function exitCode(kinds: ReadonlySet<CheckKind | "error">): number {
  if (kinds.has("error")) return 2;
  if (kinds.has("not-linearizable")) return 1;
  if (kinds.has("unknown")) return 3;
  return 0;
}

/** `chronon lincheck`: check Jepsen-format histories. */
export const command: Command = {
  name: "lincheck",
  summary: "check histories in Jepsen's formats for linearizability (cas-register, kv)",
  usage,
  // deno-lint-ignore require-await -- async so that usage errors reject like the other commands'
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        options: { model: { type: "string" }, json: { type: "boolean", default: false }, steps: { type: "string" } },
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.model !== "cas-register" && values.model !== "kv") throw new UsageError("--model must be cas-register or kv");
    if (positionals.length === 0) throw new UsageError("name at least one history file");
    const stepsMax = values.steps === undefined ? checkStepsMaxDefault : Number(values.steps);
    if (!Number.isSafeInteger(stepsMax) || stepsMax <= 0) throw new UsageError("--steps must be a positive integer");
    const kinds = new Set<CheckKind | "error">();
    const elapsedMs: number[] = [];
    for (const file of positionals) {
      let result: CheckResult;
      const started = performance.now();
      try {
        const text = readFileSync(file, "utf8");
        result = values.model === "kv"
          ? check(kv, parseKvEdn(text), { stepsMax }) as CheckResult
          : check(casRegister, parseEtcdLog(text), { stepsMax }) as CheckResult;
      } catch (error) {
        const isFileError = error instanceof Error && "code" in error && typeof error.code === "string";
        if (!(error instanceof HistoryError) && !isFileError) throw error;
        kinds.add("error");
        const message = error instanceof HistoryError ? error.message : `cannot read: ${error.message}`;
        if (values.json) console.log(JSON.stringify({ file, kind: "error", explanation: message }));
        else console.error(`${file}: error: ${message}`);
        continue;
      }
      const ms = performance.now() - started;
      elapsedMs.push(ms);
      kinds.add(result.kind);
      const { violation: _violation, ...summary } = result;
      if (values.json) console.log(JSON.stringify({ file, ...summary, ms: Math.round(ms * 100) / 100 }));
      else {
        const detail = `${result.operationCount} operations, ${result.partitionCount} partition(s), ${result.steps} steps, ${ms.toFixed(1)} ms`;
        console.log(`${file}: ${result.kind} (${detail})${result.ok ? "" : `\n  ${result.explanation}`}`);
      }
    }
    if (!values.json && elapsedMs.length > 1) {
      const sorted = [...elapsedMs].sort((a, b) => a - b);
      const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
      console.log(`${elapsedMs.length} file(s) checked: median ${median.toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms per file (parse + check)`);
    }
    return exitCode(kinds);
  },
};
