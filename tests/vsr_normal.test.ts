import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { clientId, Cluster, untext } from "./vsr_harness.ts";

describe("vsr normal operation", () => {
  test("a 3-replica cluster elects a primary, commits requests in order on every replica", () => {
    const c = new Cluster({ replicaCount: 3 });
    c.tick(30);
    const p = c.primary();
    assert.ok(p >= 0, "a primary emerges");
    const client = clientId(1);
    c.register(p, client);
    const tokens: number[] = [];
    for (let i = 1; i <= 5; i++) {
      tokens.push(c.request(p, client, i, `v${i}`));
      c.settle();
    }
    for (const [i, token] of tokens.entries()) {
      const reply = c.reply(token);
      assert.equal(reply?.error, undefined, JSON.stringify(reply));
      assert.equal(untext(reply?.body), `ok:${i + 1}`);
    }
    c.tick(10);
    for (let r = 0; r < 3; r++) assert.deepEqual(c.machines[r]!.items, ["v1", "v2", "v3", "v4", "v5"], `replica ${r}`);
  });

  test("one replica commits alone", () => {
    const c = new Cluster({ replicaCount: 1 });
    c.tick(2);
    assert.equal(c.primary(), 0);
    c.register(0, clientId(1));
    const t = c.request(0, clientId(1), 1, "x");
    c.settle();
    assert.equal(untext(c.reply(t)?.body), "ok:1");
  });
});
