/**
 * The closed set of errors an operator can meet when opening, formatting or using a data
 * dir. Each names the path and what is wrong; anything else is a bug (AssertionFailed) or
 * an I/O failure from the backend (DiskError).
 * @module
 */

/** Base class of every storage operating error; `path` is the file or dir involved. */
export class StorageError extends Error {
  /** The file or directory the error is about. */
  readonly path: string;
  /** Creates an error about `path`. */
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

/** The path exists but is not a usable chronon data dir (foreign files, corrupt identity). */
export class DataDirError extends StorageError {
  override readonly name = "DataDirError";
}

/** No data dir at the path (missing, empty, or a format that never finished). */
export class NotFormattedError extends StorageError {
  override readonly name = "NotFormattedError";
}

/** `format` found something already at the path and refused to overwrite it. */
export class AlreadyFormattedError extends StorageError {
  override readonly name = "AlreadyFormattedError";
}

/** The data dir belongs to another cluster than the one the caller named. */
export class ClusterMismatchError extends StorageError {
  override readonly name = "ClusterMismatchError";
}

/** The data dir (or one of its files) was written by a newer format than this code reads. */
export class FormatVersionError extends StorageError {
  override readonly name = "FormatVersionError";
}

/** No copy of the superblock is valid: the replica's durable state cannot be trusted. */
export class CorruptSuperblockError extends StorageError {
  override readonly name = "CorruptSuperblockError";
}

/**
 * The journal cannot go on: an earlier write or sync failed (after a failed fdatasync the
 * kernel may have dropped the dirty pages, so the only safe way on is to restart and
 * recover), the journal was closed, or a repair was refused.
 */
export class JournalError extends StorageError {
  override readonly name = "JournalError";
}
