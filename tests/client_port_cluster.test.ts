import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "../src/client/client.ts";
import { parseConfig } from "../src/node/config.ts";
import { createReplica } from "../src/node/replica_factory.ts";
import { startReplica } from "../src/node/replica_node.ts";
import type { RunningReplica } from "../src/node/replica_node.ts";
import kv from "../examples/kv.ts";
import { freePort } from "../src/net/free_port.ts";

test("a real 3-replica cluster answers the binary protocol on its client ports, hints included, like HTTP", async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-client-port-"));
  const ports = await Promise.all(Array.from({ length: 9 }, () => freePort()));
  const config = parseConfig({
    cluster: "client-port-test",
    replicas: [0, 1, 2].map((i) => ({
      bus: `127.0.0.1:${ports[i]}`, api: `127.0.0.1:${ports[i + 3]}`, clientPort: `127.0.0.1:${ports[i + 6]}`, dataDir: join(dir, `r${i}`),
    })),
    secret: { value: "client-port-test-secret-0123456789" },
    token: { value: "client-port-test-token" },
  });
  assert.equal(config.replicas[2]!.clientUrl, `chronon://127.0.0.1:${ports[8]}`);
  const running: RunningReplica[] = [];
  const binaryUrls = config.replicas.map((r) => r.clientUrl!);
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      running.push(await startReplica({ config, replica: i, app: kv, createReplica, format: true, log: () => {} }));
    }
    assert.deepEqual(running.map((r) => r.clientPort), [ports[6], ports[7], ports[8]]);
    const deadline = Date.now() + 10_000;
    let primary = -1;
    while (primary < 0 && Date.now() < deadline) {
      const normal = running.map((r) => r.status()).filter((s) => s.status === "normal" && s.primary === s.replica);
      if (normal.length === 1) primary = normal[0]!.replica;
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(primary >= 0, "a primary within 10 s");
    // Start at a backup: the client must follow the not_primary hint to the primary's client port.
    const backup = (primary + 1) % 3;
    const order = [backup, (backup + 1) % 3, (backup + 2) % 3].map((i) => binaryUrls[i]!);
    const binary = new Client<typeof kv>({ addresses: order, token: "client-port-test-token", timeoutMs: 2000, deadlineMs: 10_000 });
    clients.push(binary);
    const first = await binary.submit({ type: "put", key: "a", value: "1" });
    assert.deepEqual(first, { ok: true, value: "1", version: 1 });
    assert.equal(binary.primary, binaryUrls[primary]);
    const cas = await binary.submit({ type: "cas", key: "a", expected: "0", value: "2" });
    assert.deepEqual(cas, { ok: false, value: "1", version: 1 }, "a failed cas is a reply, not an error");
    // Many clients sharing the process's connections, each one request in flight.
    const many = Array.from({ length: 16 }, () => new Client<typeof kv>({ addresses: order, token: "client-port-test-token", timeoutMs: 2000, deadlineMs: 10_000 }));
    clients.push(...many);
    const replies = await Promise.all(many.map((c, i) => c.submit({ type: "put", key: `k${i}`, value: String(i) })));
    assert.ok(replies.every((r, i) => r.ok && r.value === String(i) && r.version === 1));
    assert.equal(await binary.query({ type: "size" }), 17);
    // The HTTP API sees the same state.
    const http = new Client<typeof kv>({ addresses: config.replicas.map((r) => r.apiUrl), token: "client-port-test-token", timeoutMs: 2000, deadlineMs: 10_000 });
    assert.equal(await http.query({ type: "get", key: "a" }), "1");
    // Without the token, writes are refused on the client port too.
    const anonymous = new Client<typeof kv>({ addresses: [binaryUrls[primary]!], timeoutMs: 2000, deadlineMs: 5000 });
    clients.push(anonymous);
    await assert.rejects(anonymous.submit({ type: "put", key: "b", value: "x" }), (e: Error) => e.name === "UnauthorizedError");
  } finally {
    for (const client of clients) client.close();
    for (const replica of running) await replica.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
