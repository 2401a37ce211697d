import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";

/**
 * One benchmark target of `chronon bench`: each prints its figures next to the limit they
 * are compared against, measured in the same run.
 */
export interface BenchTarget {
  /** One line for the usage text. */
  readonly summary: string;
  /** Runs the benchmark with the arguments after the target name; resolves to an exit code. */
  run(argv: string[]): Promise<number>;
}

/**
 * The benchmark targets, loaded lazily. Each module exports `bench: BenchTarget`.
 * Add one line per target.
 */
const targets: Record<string, () => Promise<BenchTarget>> = {
  journal: () => import("./bench_journal.ts").then((m) => m.bench),
  kernel: () => import("./bench_kernel.ts").then((m) => m.bench),
  cluster: () => import("./bench_cluster.ts").then((m) => m.bench),
};

/** `chronon bench TARGET …`: dispatches to journal, kernel, cluster, … */
export const command: Command = {
  name: "bench",
  handlesHelp: true,
  summary: "measure throughput and latency against the raw limits (journal, kernel, cluster, …)",
  get usage(): string {
    return [
      "chronon bench TARGET [options]   (chronon bench TARGET --help for its options)",
      "",
      "Targets: " + (Object.keys(targets).join(", ") || "(none yet)"),
      "",
      "Every figure is printed next to the limit it is compared against, measured in the",
      "same run; trials are repeated and medians quoted because these machines are noisy.",
    ].join("\n");
  },
  async run(argv) {
    const [name, ...rest] = argv;
    if (name === undefined || name === "--help" || name === "-h") {
      console.log(this.usage);
      return name === undefined ? 2 : 0;
    }
    const load = targets[name];
    if (load === undefined) throw new UsageError(`unknown target '${name}'`);
    return await (await load()).run(rest);
  },
};
