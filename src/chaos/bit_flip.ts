/**
 * Bit flips in a stopped replica's journal, for the disk nemesis: latent sector errors in
 * data that was written and synced long ago. Recovery must detect each by checksum and
 * repair it from peers, never truncate it away or apply it.
 *
 * Flips land between the segment header and three quarters of the file, away from the
 * tail: a damaged last entry looks like a torn write (which recovery truncates), and the
 * point here is corruption of the settled, committed part of the log.
 * @module
 */
import { closeSync, openSync, readdirSync, readSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { segmentHeaderSize } from "../storage/segment.ts";

/** One injected flip. */
export interface BitFlip {
  readonly file: string;
  readonly offset: number;
  readonly bit: number;
}

/** Smallest segment (bytes past its header) worth flipping: below it there is no settled part. */
export const flipSegmentBytesMin = 64 * 1024;

/**
 * Flips `count` bits at offsets drawn with `random` in the journal of the data dir at
 * `dataDir` (whose replica must be stopped). Returns the flips made (none when the journal
 * is still too small).
 */
export function flipJournalBits(dataDir: string, count: number, random: () => number): BitFlip[] {
  const journal = join(dataDir, "journal");
  let files: string[];
  try {
    files = readdirSync(journal).filter((name) => !name.startsWith(".")).sort();
  } catch {
    return [];
  }
  const candidates = files
    .map((name) => ({ path: join(journal, name), size: statSync(join(journal, name)).size }))
    .filter((f) => f.size - segmentHeaderSize >= flipSegmentBytesMin);
  const flips: BitFlip[] = [];
  for (let i = 0; i < count && candidates.length > 0; i++) {
    const target = candidates[Math.floor(random() * candidates.length)]!;
    const settledEnd = Math.floor(target.size * 0.75);
    const offset = segmentHeaderSize + Math.floor(random() * (settledEnd - segmentHeaderSize));
    const bit = Math.floor(random() * 8);
    const fd = openSync(target.path, "r+");
    try {
      const byte = new Uint8Array(1);
      readSync(fd, byte, 0, 1, offset);
      byte[0] = byte[0]! ^ (1 << bit);
      writeSync(fd, byte, 0, 1, offset);
    } finally {
      closeSync(fd);
    }
    flips.push({ file: target.path, offset, bit });
  }
  return flips;
}
