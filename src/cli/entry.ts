/**
 * Entry point for Bun, Deno and single executables: runs the `chronon` command with the
 * process arguments and exits with its code.
 * @module
 */
import process from "node:process";
import { main } from "./main.ts";

process.exit(await main(process.argv.slice(2)));
