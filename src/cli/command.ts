/** One `chronon` sub-command. Each lives in its own module under src/cli/commands/. */
export interface Command {
  /** The word typed after `chronon`. */
  readonly name: string;
  /** One line for `chronon --help`. */
  readonly summary: string;
  /** The full text printed by `chronon NAME --help`. */
  readonly usage: string;
  /** True when the command handles --help itself (it dispatches to sub-targets). */
  readonly handlesHelp?: boolean;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** A usage error: the command line itself is wrong. Printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
