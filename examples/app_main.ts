/**
 * A guestbook that is its own entry point: run it directly to start a replica of it.
 *
 *     bun examples/app_main.ts start --config cluster.json --replica 0 --format
 *     deno run --allow-ffi --allow-net --allow-read --allow-write --allow-env examples/app_main.ts start …
 *     node --import tsx examples/app_main.ts start …
 *
 * Imported as a module (by a client for its types, by a test), it only defines the app:
 * the `isMain(import.meta)` guard keeps the runner from starting.
 * @module
 */
import { defineApp, isMain, runMain } from "../mod.ts";
import type { ApplyResult, Event } from "../mod.ts";

/** Longest name and message accepted, in characters. */
export const nameLengthMax = 64;
export const textLengthMax = 1024;
/** Entries kept: the oldest is dropped past this (a bound on the state). */
export const entriesMax = 10_000;

/** An event: sign the guestbook. */
export interface SignEvent {
  readonly name: string;
  readonly text: string;
}

/** One signature, stamped with the log's time and position. */
export interface Entry {
  readonly name: string;
  readonly text: string;
  readonly atMs: number;
  readonly index: number;
}

/** Queries: the entry count, or the last `count` entries. */
export type GuestbookQuery = { readonly type: "count" } | { readonly type: "latest"; readonly count: number };

/** The guestbook's state. */
export interface GuestbookState {
  entries: Entry[];
  signed: number;
}

const app = defineApp({
  genesis: (): GuestbookState => ({ entries: [], signed: 0 }),

  apply(state: GuestbookState, event: Event<SignEvent>, ctx): ApplyResult<GuestbookState, { index: number }, SignEvent> {
    const { name, text } = event.payload;
    if (typeof name !== "string" || name.length === 0 || name.length > nameLengthMax) throw new TypeError(`name must be 1..${nameLengthMax} characters`);
    if (typeof text !== "string" || text.length > textLengthMax) throw new TypeError(`text must be at most ${textLengthMax} characters`);
    const index = state.signed;
    state.entries.push({ name, text, atMs: ctx.blockTime, index });
    if (state.entries.length > entriesMax) state.entries.shift();
    state.signed += 1;
    return { state, reply: { index } };
  },

  query(state: GuestbookState, query: GuestbookQuery): number | Entry[] {
    if (query.type === "count") return state.signed;
    return state.entries.slice(-Math.max(0, Math.min(query.count, 100)));
  },
});

export default app;

if (isMain(import.meta)) await runMain(app);
