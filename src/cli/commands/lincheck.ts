import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";
import { casRegister, check, HistoryError, kv, parseEtcdLog, parseKvEdn } from "../../sim/lincheck/mod.ts";
import type { CheckResult } from "../../sim/lincheck/mod.ts";

const usage = `chronon lincheck --model cas-register|kv FILE... [--json] [--steps N]

Checks each history file for linearizability and prints, per file, \`linearizable\` or
\`not-linearizable\` with a short explanation and the time taken.

  --model cas-register   Jepsen's etcd log of a compare-and-set register
                         (INFO  jepsen.util - 4<TAB>:invoke<TAB>:read<TAB>nil)
  --model kv             EDN maps of a key-value store with get/put/append, one per line
                         ({:process 0, :type :invoke, :f :append, :key "0", :value "x"})
  --steps N              search budget; past it the verdict is \`unknown\` (default 50,000,000)
  --json                 one JSON object per file

Exit code 0 when every file is linearizable, 1 when any is not (or unknown), 2 on a usage
or parse error.`;

/** `chronon lincheck`: check Jepsen-format histories. */
export const command: Command = {
  name: "lincheck",
  summary: "check histories in Jepsen's formats for linearizability (cas-register, kv)",
  usage,
  run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { model: { type: "string" }, json: { type: "boolean", default: false }, steps: { type: "string" } }, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.model !== "cas-register" && values.model !== "kv") throw new UsageError("--model must be cas-register or kv");
    if (positionals.length === 0) throw new UsageError("name at least one history file");
    const stepsMax = values.steps === undefined ? undefined : Number(values.steps);
    if (stepsMax !== undefined && !(Number.isInteger(stepsMax) && stepsMax > 0)) throw new UsageError("--steps must be a positive integer");
    let exit = 0;
    for (const file of positionals) {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        console.error(`chronon lincheck: cannot read ${file}: ${(error as Error).message}`);
        return Promise.resolve(2);
      }
      const started = performance.now();
      let result: CheckResult;
      let operations: number;
      try {
        const options = stepsMax === undefined ? {} : { stepsMax };
        if (values.model === "kv") {
          const history = parseKvEdn(text);
          operations = history.length;
          result = check(kv, history, options);
        } else {
          const history = parseEtcdLog(text);
          operations = history.length;
          result = check(casRegister, history, options);
        }
      } catch (error) {
        if (error instanceof HistoryError) {
          console.error(`chronon lincheck: ${file}: ${error.message}`);
          return Promise.resolve(2);
        }
        throw error;
      }
      const ms = performance.now() - started;
      if (result.verdict !== "linearizable") exit = 1;
      if (values.json) console.log(JSON.stringify({ file, ...result, operations, ms: Math.round(ms * 10) / 10 }));
      else console.log(`${file}: ${result.verdict} (${operations} operations, ${ms.toFixed(1)} ms)${result.verdict === "linearizable" ? "" : `\n  ${result.explanation}`}`);
    }
    return Promise.resolve(exit);
  },
};
