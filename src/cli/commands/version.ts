import type { Command } from "../command.ts";
import { runtimeName, runtimeVersion } from "../runtime.ts";

/** `chronon version`: the package version and the runtime it runs on. */
export const command: Command = {
  name: "version",
  summary: "print chronon's version and the runtime",
  usage: "chronon version\n\nPrints chronon's version and the JavaScript runtime running it.",
  run() {
    console.log(`chronon 0.1.0 on ${runtimeName()} ${runtimeVersion()}`);
    return Promise.resolve(0);
  },
};
