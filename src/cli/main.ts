/**
 * The `chronon` command line: dispatches to a sub-command by name.
 * @module
 */
import { commands } from "./commands.ts";
import { UsageError } from "./command.ts";
import { AppModuleError } from "../node/load_app.ts";

/** Runs `chronon ARGV…` and resolves to the exit code (0 ok, 1 failure found, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const lines = ["usage: chronon COMMAND [options]   (chronon COMMAND --help for details)", ""];
    for (const key of Object.keys(commands).sort()) {
      const command = await commands[key]!();
      lines.push(`  ${key.padEnd(12)} ${command.summary}`);
    }
    lines.push("", "Every command takes --runtime node|bun|deno to run under that runtime.");
    console.log(lines.join("\n"));
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (load === undefined) {
    console.error(`chronon: unknown command '${name}' (chronon --help lists them)`);
    return 2;
  }
  const command = await load();
  if (command.handlesHelp !== true && (rest.includes("--help") || rest.includes("-h"))) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    // Bad input is named in one line, never a stack trace: a usage error, an option the
    // command does not know (node:util parseArgs), an application module that will not load.
    const code = (error as { code?: unknown } | null)?.code;
    if (error instanceof UsageError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))) {
      console.error(`chronon ${name}: ${(error as Error).message}\n\n${command.usage}`);
      return 2;
    }
    if (error instanceof AppModuleError) {
      console.error(`chronon ${name}: ${error.message}`);
      return 2;
    }
    throw error;
  }
}
