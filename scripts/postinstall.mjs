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

// npm sometimes leaves @oven/bun-linux-x64 without its binary (seen with npm 11 here, both
// on `npm install` and `npm ci`). Bun is needed by `npm test` and `chronon build`: repair
// it from the registry tarball of the same version.
import { mkdtempSync, readFileSync, rmSync, copyFileSync, chmodSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
const bunPackage = join(root, "node_modules", "@oven", "bun-linux-x64");
const bunBinary = join(bunPackage, "bin", "bun");
if (existsSync(join(bunPackage, "package.json")) && !existsSync(bunBinary)) {
  const { version } = JSON.parse(readFileSync(join(bunPackage, "package.json"), "utf8"));
  const scratch = mkdtempSync(join(tmpdir(), "chronon-bun-"));
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const pack = spawnSync(npm, ["pack", `@oven/bun-linux-x64@${version}`, "--silent"], { cwd: scratch, encoding: "utf8" });
  const tarball = pack.stdout.trim().split("\n").pop();
  const untar = pack.status === 0 ? spawnSync("tar", ["xzf", tarball, "package/bin/bun"], { cwd: scratch }) : { status: 1 };
  if (untar.status === 0) {
    mkdirSync(join(bunPackage, "bin"), { recursive: true });
    copyFileSync(join(scratch, "package", "bin", "bun"), bunBinary);
    chmodSync(bunBinary, 0o755);
    console.log(`chronon: repaired the bun ${version} binary that npm left out`);
  } else {
    console.log("chronon: the bun binary is missing from node_modules and could not be repaired; npm test needs it (rm -rf node_modules && npm install)");
  }
  rmSync(scratch, { recursive: true, force: true });
}
