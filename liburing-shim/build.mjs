// Builds liburing-shim/build/libchronon_uring.so: shim.c linked statically with liburing.a
// and `-Wl,--exclude-libs,ALL`, so the library needs nothing but libc at run time.
// Run by scripts/postinstall.mjs on `npm install`, or by hand: `node liburing-shim/build.mjs`.
//
// Without a C compiler or liburing's headers and static library it prints one line saying
// how to enable io_uring and exits 0 (chronon then uses the portable disk backend), unless
// `--require` is given, which turns that into exit 1. A failing compile exits 1.
//
// Environment:
//   CC               the C compiler (default gcc)
//   LIBURING_PREFIX  look for include/liburing.h and lib/liburing.a under this prefix only
//                    (default: the compiler's own search paths)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "shim.c");
const output = join(here, "build", "libchronon_uring.so");
const required = process.argv.includes("--require");
const enable = "apt-get install liburing-dev gcc, then npm rebuild or node liburing-shim/build.mjs";

/** Prints the one-line reason the shim was not built and exits. */
function unavailable(reason) {
  console.log(`chronon: io_uring shim not built: ${reason}; to enable io_uring: ${enable}`);
  process.exit(required ? 1 : 0);
}

const cc = process.env.CC || "gcc";
const probe = spawnSync(cc, ["--version"], { encoding: "utf8" });
if (probe.error !== undefined || probe.status !== 0) unavailable(`no C compiler (${cc})`);

/** liburing.a's path, or null when the compiler cannot find it. */
function findStaticLibrary() {
  const prefix = process.env.LIBURING_PREFIX;
  if (prefix) {
    const path = join(prefix, "lib", "liburing.a");
    return existsSync(path) ? path : null;
  }
  const found = spawnSync(cc, ["-print-file-name=liburing.a"], { encoding: "utf8" }).stdout?.trim() ?? "";
  return isAbsolute(found) && existsSync(found) ? found : null;
}

const includeArgs = process.env.LIBURING_PREFIX ? ["-I", join(process.env.LIBURING_PREFIX, "include")] : [];
const header = spawnSync(cc, [...includeArgs, "-E", "-x", "c", "-"], { input: "#include <liburing.h>\n", encoding: "utf8" });
if (header.error !== undefined || header.status !== 0) unavailable("liburing.h not found");
const library = findStaticLibrary();
if (library === null) unavailable("liburing.a not found");

mkdirSync(dirname(output), { recursive: true });
const partial = `${output}.${process.pid}.tmp`;
const args = [
  "-O2", "-g0", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror",
  ...includeArgs,
  "-o", partial, source, library,
  "-Wl,--exclude-libs,ALL", "-Wl,-z,defs", "-Wl,-z,now",
];
const compile = spawnSync(cc, args, { stdio: "inherit" });
if (compile.error !== undefined || compile.status !== 0) {
  rmSync(partial, { force: true });
  console.log(`chronon: io_uring shim failed to compile (${cc} ${args.join(" ")})`);
  process.exit(1);
}
// Rename so a running process never loads a half-written library.
renameSync(partial, output);
console.log(`chronon: io_uring shim built: ${output}`);
