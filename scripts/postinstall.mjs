// Runs after `npm install`: builds the optional io_uring shim. Never fails the install:
// without a C compiler or liburing headers chronon uses the portable backend.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const build = join(root, "liburing-shim", "build.mjs");
if (existsSync(build)) {
  const result = spawnSync(process.execPath, [build], { stdio: "inherit" });
  if (result.status !== 0) {
    console.log("chronon: io_uring shim not built; the portable disk backend will be used.");
  }
}
