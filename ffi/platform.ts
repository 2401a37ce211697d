/**
 * Platform facts shared by the three FFI backends: open flags, where the shim lives, and
 * why io_uring is refused when it is.
 * @module
 */
import fs from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { errnoName } from "./errors.ts";
import type { OpenFlags, RingUnavailable } from "./native_io.ts";

/** ABI version the JS side expects from chronon_shim_version(). */
export const shimVersion = 2;

/** Int32s per completion record that chronon_ring_reap writes: (tag, result). */
export const completionRecordInt32s = 2;

/** Linux open(2) flags; only O_DIRECT differs between x86_64 and aarch64. */
export const openFlags: OpenFlags = {
  O_RDONLY: 0,
  O_RDWR: 0o2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_TRUNC: 0o1000,
  O_DSYNC: 0o10000,
  O_DIRECT: process.arch === "arm64" ? 0o200000 : 0o40000,
  O_CLOEXEC: 0o2000000,
};

/** lseek(2) whence for "from the end of the file". */
export const seekEnd = 2;

/** Path of the shim: `CHRONON_URING_SHIM` or liburing-shim/build/libchronon_uring.so. */
export function shimPath(): string {
  const override = process.env.CHRONON_URING_SHIM;
  if (override !== undefined && override !== "") return override;
  return fileURLToPath(new URL("../liburing-shim/build/libchronon_uring.so", import.meta.url));
}

/** The C library to bind. */
export const libcName = "libc.so.6";

/** A ring-unavailable answer for a shim that is not there or does not load. */
export function shimMissing(path: string, detail: string): RingUnavailable {
  const built = fs.existsSync(path);
  const reason = built
    ? `the io_uring shim at ${path} does not load (${detail}); rebuild it with node liburing-shim/build.mjs`
    : `no io_uring shim built (${path} is missing; apt-get install liburing-dev gcc, then node liburing-shim/build.mjs)`;
  return { ok: false, code: "", reason };
}

/** Reads /proc/sys/kernel/io_uring_disabled: 0 allowed, 1 privileged/group only, 2 off; null when absent. */
function uringDisabledSetting(): number | null {
  try {
    return Number(fs.readFileSync("/proc/sys/kernel/io_uring_disabled", "utf8").trim());
  } catch {
    return null;
  }
}

/** Turns io_uring_queue_init's -errno into the reason a person can act on. */
export function ringRefused(errno: number): RingUnavailable {
  const code = errnoName(errno);
  const disabled = uringDisabledSetting();
  let reason: string;
  if (disabled === 2) {
    reason = `io_uring is disabled by sysctl kernel.io_uring_disabled=2 (${code})`;
  } else if (disabled === 1 && (code === "EPERM" || code === "EACCES")) {
    reason = `io_uring is limited to privileged users by sysctl kernel.io_uring_disabled=1 (${code})`;
  } else if (code === "EPERM") {
    reason = "io_uring is blocked by a seccomp filter (EPERM; Docker 25+ and containerd 2 block it by default)";
  } else if (code === "ENOSYS") {
    reason = "the kernel has no io_uring (ENOSYS; Linux 5.6 or later is needed)";
  } else if (code === "ENOMEM") {
    reason = "io_uring could not lock memory for its rings (ENOMEM; raise ulimit -l)";
  } else {
    reason = `io_uring_queue_init failed (${code})`;
  }
  return { ok: false, code, reason };
}
