import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { defineApp } from "../mod.ts";
import type { Event } from "../mod.ts";
import { decodeReply } from "../src/app/wire.ts";
import { Executor } from "../src/kernel/executor.ts";
import { ClientHexTable, clientHexSlots } from "../src/kernel/client_hex.ts";
import { hex128 } from "../src/kernel/outbox.ts";
import { EntryLog } from "./kernel_helpers.ts";

describe("client hex table", () => {
  test("gives hex128 of every id, for more clients than it has slots and repeated ones", () => {
    const table = new ClientHexTable();
    for (let round = 0; round < 3; round++) {
      for (let c = 0; c < clientHexSlots * 2; c++) {
        const id = new Uint8Array(16);
        id[15] = c & 0xff;
        id[3] = c >> 8;
        id[8] = round;
        assert.equal(table.hex(id), hex128(id));
        assert.equal(table.hex(id.slice()), hex128(id));
      }
    }
  });

  test("each event's header names its own client when 64 clients interleave", () => {
    const app = defineApp({
      genesis: () => ({}),
      apply: (state: object, event: Event<null>) => ({ state, reply: event.header.client }),
      query: () => null,
    });
    const executor = new Executor(app);
    const log = new EntryLog();
    for (let i = 0; i < 256; i++) {
      const id = new Uint8Array(16).fill(i % 64);
      const entry = { ...log.event(null), client: id };
      const reply = decodeReply(executor.commit(entry));
      assert.ok(reply.ok);
      assert.equal(reply.value, hex128(id));
    }
  });
});
