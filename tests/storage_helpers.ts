/** Helpers shared by the storage tests: entries that chain, and a Disk that counts writes. */
import { encodeEntry, rootEntry } from "../src/codec/entry_header.ts";
import type { Disk, DiskFile, DiskOpenOptions, WriteOptions } from "../src/storage/disk.ts";

export const cluster = new Uint8Array(16).fill(0x42);
const client = new Uint8Array(16).fill(1);

/** Deterministic body for `op`, `size` bytes. */
export function bodyFor(op: number, size: number): Uint8Array {
  const body = new Uint8Array(size);
  for (let i = 0; i < size; i++) body[i] = (op * 31 + i * 7) & 0xff;
  return body;
}

/** Builds entries op first..first+count-1 chained after `parentHeader` (root when omitted). */
export function chain(count: number, bodySize = 100, parentHeader = rootEntry(cluster), first = 1): { header: Uint8Array; body: Uint8Array }[] {
  const out: { header: Uint8Array; body: Uint8Array }[] = [];
  let parent = parentHeader.slice(0, 16);
  for (let op = first; op < first + count; op++) {
    const body = bodyFor(op, bodySize);
    const header = encodeEntry({
      parent, cluster, client, op, commit: Math.max(0, op - 1), timestamp: 1_700_000_000_000 + op,
      view: 1, request: op, operation: 16,
    }, body);
    out.push({ header, body });
    parent = header.slice(0, 16);
  }
  return out;
}

/** Wraps a Disk, counting write calls and synced writes. */
export class CountingDisk implements Disk {
  readonly name: string;
  writes = 0;
  readonly #inner: Disk;
  constructor(inner: Disk) {
    this.#inner = inner;
    this.name = `counting(${inner.name})`;
  }
  async open(path: string, options: DiskOpenOptions): Promise<DiskFile> {
    const file = await this.#inner.open(path, options);
    const write = (offset: number, buffers: readonly Uint8Array[], opts: WriteOptions) => {
      this.writes++;
      return file.write(offset, buffers, opts);
    };
    return {
      path: file.path,
      size: () => file.size(),
      read: (o, l) => file.read(o, l),
      write,
      sync: () => file.sync(),
      truncate: (s) => file.truncate(s),
      close: () => file.close(),
    };
  }
  exists(path: string): Promise<boolean> { return this.#inner.exists(path); }
  list(directory: string): Promise<string[]> { return this.#inner.list(directory); }
  mkdir(directory: string): Promise<void> { return this.#inner.mkdir(directory); }
  remove(path: string): Promise<void> { return this.#inner.remove(path); }
  syncDirectory(directory: string): Promise<void> { return this.#inner.syncDirectory(directory); }
  close(): Promise<void> { return this.#inner.close(); }
}
