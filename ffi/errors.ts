/**
 * Errors of the native-I/O layer: one class for a failed system call, named by its errno.
 * @module
 */
import os from "node:os";

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(os.constants.errno)) {
  // EAGAIN/EWOULDBLOCK and EDEADLK/EDEADLOCK share a number: keep the first, usual name.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** The symbolic name of a positive errno value ("EIO"), or "E<number>" when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/**
 * A system call through FFI failed.
 * @example
 * try { io.close(-1); } catch (e) { if (e instanceof IoError && e.code === "EBADF") { … } }
 */
export class IoError extends Error {
  override readonly name = "IoError";
  /** errno name: "EIO", "ENOSPC", "EBADF", "EINVAL", "EPERM", "ENOSYS", … */
  readonly code: string;
  /** The positive errno value. */
  readonly errno: number;
  /** The call that failed, e.g. "pwrite". */
  readonly operation: string;

  /** Creates the error for `operation` failing with positive `errno`. */
  constructor(operation: string, errno: number, detail = "") {
    const code = errnoName(errno);
    super(`${operation}: ${code}${detail === "" ? "" : ` (${detail})`}`);
    this.code = code;
    this.errno = errno;
    this.operation = operation;
  }
}

/** The native library or its FFI could not be loaded at all (no koffi, no libc). */
export class NativeIoUnavailable extends Error {
  override readonly name = "NativeIoUnavailable";
}
