/**
 * A binary min-heap of timed events ordered by (time, sequence): events due at the same
 * tick come out in the order they were scheduled, so the simulation is deterministic.
 * @module
 */
import { assert } from "../assert.ts";

/** Anything with a due time and a tie-breaking sequence number. */
export interface Timed {
  readonly at: number;
  readonly seq: number;
}

function before(a: Timed, b: Timed): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A bounded min-heap of {@link Timed} items. */
export class TimedHeap<T extends Timed> {
  private readonly items: T[] = [];

  /** @param sizeMax pushing beyond it is a simulator bug (every queue is bounded upstream). */
  constructor(readonly sizeMax: number) {}

  /** Items held. */
  get size(): number {
    return this.items.length;
  }

  /** Adds an item. */
  push(item: T): void {
    assert(this.items.length < this.sizeMax, `timed heap full (${this.sizeMax})`);
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      const tmp = items[i]!;
      items[i] = items[parent]!;
      items[parent] = tmp;
      i = parent;
    }
  }

  /** The earliest item, without removing it. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Removes and returns the earliest item. */
  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < items.length && before(items[left]!, items[smallest]!)) smallest = left;
        if (right < items.length && before(items[right]!, items[smallest]!)) smallest = right;
        if (smallest === i) break;
        const tmp = items[i]!;
        items[i] = items[smallest]!;
        items[smallest] = tmp;
        i = smallest;
      }
    }
    return top;
  }

  /** Removes every item for which `drop` returns true (crash of a node, for instance). */
  removeWhere(drop: (item: T) => boolean): number {
    const kept = this.items.filter((item) => !drop(item));
    const removed = this.items.length - kept.length;
    if (removed === 0) return 0;
    this.items.length = 0;
    for (const item of kept) this.push(item);
    return removed;
  }
}
