import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeValue } from "../src/app/value_codec.ts";
import { beginTransaction, commitTransaction, guard, rollbackTransaction, unguard } from "../src/kernel/state_guard.ts";

interface Item {
  n: number;
  tags: string[];
}

describe("state guard", () => {
  test("one object gets one proxy within a transaction, however it is reached", () => {
    const item: Item = { n: 1, tags: [] };
    const state = { items: new Map([["a", item], ["b", item]]), also: item };
    beginTransaction();
    const s = guard(state);
    const a = s.items.get("a")!;
    assert.equal(a, s.items.get("b"));
    assert.equal(a, s.also);
    assert.equal(s.items, s.items);
    assert.notEqual(a as object, item, "apply sees a proxy");
    assert.equal(unguard(a), item);
    commitTransaction();
  });

  test("a proxy stored inside a fresh object stands for its target in later transactions", () => {
    const item: Item = { n: 1, tags: [] };
    const state: { items: Map<string, Item>; pair?: { first: Item } } = { items: new Map([["a", item]]) };
    beginTransaction();
    const s = guard(state);
    s.pair = { first: s.items.get("a")! };
    commitTransaction();
    assert.notEqual(state.pair!.first, item, "a nested proxy is stored as it was given");
    beginTransaction();
    const t = guard(state);
    const viaPair = t.pair!.first;
    assert.equal(viaPair, t.items.get("a"));
    viaPair.n = 5;
    rollbackTransaction();
    assert.equal(item.n, 1, "a write through the stored proxy is undone too");
    // Reached the other way round: the map first.
    beginTransaction();
    const u = guard(state);
    const viaMap = u.items.get("a")!;
    assert.equal(u.pair!.first, viaMap);
    commitTransaction();
  });

  test("rollback restores overwritten, inserted and undefined Map values and nested writes", () => {
    const state = { items: new Map<string, unknown>([["x", { n: 1, tags: ["t"] }], ["u", undefined]]) };
    const before = encodeValue(state);
    beginTransaction();
    const s = guard(state);
    s.items.set("x", { n: 2, tags: [] });
    s.items.set("u", 7);
    s.items.set("new", 1);
    commitTransaction();
    assert.notDeepEqual(encodeValue(state), before);
    const again = { items: new Map<string, unknown>([["x", { n: 1, tags: ["t"] }], ["u", undefined]]) };
    beginTransaction();
    const g = guard(again);
    const x = g.items.get("x") as Item;
    x.n = 9;
    x.tags.push("more");
    g.items.set("u", 7);
    g.items.set("new", 1);
    g.items.delete("x");
    rollbackTransaction();
    assert.deepEqual(encodeValue(again), before);
    assert.deepEqual([...again.items.keys()], ["x", "u"]);
  });

  test("proxies handed out in a finished transaction stay usable", () => {
    const state = { list: [1, 2] };
    beginTransaction();
    const kept = guard(state).list;
    commitTransaction();
    assert.deepEqual([...kept], [1, 2]);
    assert.equal(kept.length, 2);
  });
});
