import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sameRuntimeCommand } from "../src/cli/commands/storage_common.ts";
import { Client } from "../src/client/client.ts";
import { encodeValue } from "../src/app/value_codec.ts";
import { encodeHello, nonceNew } from "../src/net/handshake.ts";
import { encodeFrame, FrameKind, frameHeaderSize } from "../src/net/frame.ts";
import { parseClusterId } from "../src/storage/cluster_id.ts";
import type guestbook from "../examples/app_main.ts";
import { primaryOf, repoRoot, spawnChild, statusOf, stopChild, waitFor, writeCluster } from "./dev_cluster_helpers.ts";
import type { Child } from "./dev_cluster_helpers.ts";

/** Writes `chunks` to a fresh connection to `port` and resolves how the server ended it. */
function attack(port: number, chunks: Uint8Array[], timeoutMs = 6000): Promise<"closed" | "still open"> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("still open");
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve("closed");
    };
    socket.on("error", done);
    socket.on("close", done);
    socket.on("end", done);
    socket.on("data", () => {}); // the server's hello, when it sends one
    socket.on("connect", () => {
      for (const chunk of chunks) socket.write(chunk);
    });
  });
}

/** Parses `name{label="value"} n` lines of a Prometheus text page. */
function metric(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

test("hostile bytes at the bus and the API are dropped and counted; the cluster keeps serving and loses nothing", { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chronon-hostile-"));
  const cluster = await writeCluster(dir, 3, { requestBodySizeMax: 4096 });
  const config = JSON.parse(readFileSync(cluster.configPath, "utf8")) as { cluster: string };
  const replicas: Child[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const { command, args, cwd } = sameRuntimeCommand(["start", "--config", cluster.configPath, "--replica", String(i), "--app", join(repoRoot, "examples/app_main.ts"), "--format", "--io", "sync"]);
      replicas.push(spawnChild(command, args, { cwd }));
    }
    const logs = () => replicas.map((r) => r.output()).join("\n");
    await waitFor("a primary", 30_000, () => primaryOf(cluster.urls), logs);
    await waitFor("all three replicas to answer", 30_000, async () => {
      const statuses = await Promise.all(cluster.urls.map(statusOf));
      return statuses.every((status) => status !== null) ? true : null;
    }, logs);
    const client = new Client<typeof guestbook>({ addresses: cluster.urls, token: cluster.token, deadlineMs: 15_000 });
    for (let i = 0; i < 5; i++) await client.submit({ name: "before", text: `write ${i}` });

    // --- the bus: replica 2 accepts dials from 0 and 1, so forged hellos claim to be 0.
    const busPort = cluster.busPorts[2]!;
    const clusterId = parseClusterId(config.cluster);
    const hello = (clusterBytes: Uint8Array) => encodeFrame(FrameKind.hello, 0, encodeHello({ cluster: clusterBytes, from: 0, to: 2, role: "dialer", nonce: nonceNew() }), null);
    const badChecksum = hello(clusterId);
    badChecksum[20]! ^= 0xff;
    const oversized = hello(clusterId).slice(0, frameHeaderSize);
    new DataView(oversized.buffer).setUint32(4, 0xffff_fff0, true);
    const attacks: Record<string, Uint8Array[]> = {
      garbage: [new TextEncoder().encode("GET / HTTP/1.1\r\nHost: replica\r\n\r\n" + "x".repeat(64))],
      bad_checksum: [badChecksum],
      wrong_cluster: [hello(parseClusterId("some-other-cluster"))],
      oversized: [oversized],
      // A right hello, then a proof made without the secret.
      bad_secret: [hello(clusterId), encodeFrame(FrameKind.proof, 0, randomBytes(32), null)],
      // A message frame (with a MAC made up without any handshake) on an unauthenticated connection.
      protocol: [encodeFrame(FrameKind.message, 1, randomBytes(40), randomBytes(32))],
      // Connects and says nothing.
      handshake_timeout: [],
    };
    const outcomes = await Promise.all(Object.entries(attacks).map(async ([reason, chunks]) => [reason, await attack(busPort, chunks)] as const));
    for (const [reason, outcome] of outcomes) assert.equal(outcome, "closed", `${reason}: the replica must drop the connection`);

    const metricsBus = await fetch(`${cluster.urls[2]}/metrics`).then((r) => r.text(), (error: Error) => {
      throw new Error(`replica 2 does not answer after the attacks (${error.message})\n${logs()}`);
    });
    for (const reason of Object.keys(attacks)) {
      assert.ok(metric(metricsBus, "chronon_bus_connections_dropped_total", `reason="${reason}"`) >= 1, `${reason} counted:\n${metricsBus.split("\n").filter((l) => l.includes("dropped")).join("\n")}`);
    }

    // --- the API of the primary.
    const primary = await waitFor("a primary", 10_000, () => primaryOf(cluster.urls), logs);
    const api = cluster.urls[primary.replica]!;
    const auth = { authorization: `Bearer ${cluster.token}` };
    const post = (path: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string>) => fetch(`${api}${path}`, { method: "POST", body, headers });
    const codeOf = async (response: Response) => ({ status: response.status, code: ((await response.json()) as { error?: { code: string } }).error?.code });
    const session = await (await post("/v1/sessions", "{}", { ...auth, "content-type": "application/json" })).json() as { session: string };
    assert.match(session.session, /^[0-9a-f]{32}$/);
    const huge = JSON.stringify({ session: session.session, request: 1, event: { name: "x", text: "y".repeat(10_000) } });
    assert.deepEqual(await codeOf(await post("/v1/requests", huge, { ...auth, "content-type": "application/json" })), { status: 413, code: "too_large" });
    assert.deepEqual(await codeOf(await post("/v1/requests", "{not json", { ...auth, "content-type": "application/json" })), { status: 400, code: "bad_request" });
    assert.deepEqual(await codeOf(await post("/v1/requests", new Uint8Array([0xff, 0x00, 0xbf, 0x1c]), { ...auth, "content-type": "application/cbor" })), { status: 400, code: "bad_request" });
    assert.deepEqual(await codeOf(await post("/v1/requests", encodeValue([1, 2]) as Uint8Array<ArrayBuffer>, { ...auth, "content-type": "application/cbor" })), { status: 400, code: "bad_request" });
    const valid = JSON.stringify({ session: session.session, request: 1, event: { name: "anon", text: "no token" } });
    assert.deepEqual(await codeOf(await post("/v1/requests", valid, { "content-type": "application/json" })), { status: 401, code: "unauthorized" });
    assert.deepEqual(await codeOf(await post("/v1/requests", valid, { authorization: "Bearer wrong", "content-type": "application/json" })), { status: 401, code: "unauthorized" });
    const metricsApi = await (await fetch(`${api}/metrics`)).text();
    for (const code of ["413", "400", "401"]) {
      assert.ok(metric(metricsApi, "chronon_api_requests_total", `route="POST /v1/requests",code="${code}"`) >= 1, `HTTP ${code} counted`);
    }

    // --- still serving, nothing lost: the writes before and after are all there, once.
    for (let i = 0; i < 5; i++) await client.submit({ name: "after", text: `write ${i}` });
    assert.equal(await client.query({ type: "count" }), 10, "none of the hostile requests was applied");
    const entries = await client.query({ type: "latest", count: 100 }) as { name: string; text: string }[];
    assert.deepEqual(entries.map((e) => `${e.name} ${e.text}`), [0, 1, 2, 3, 4].map((i) => `before write ${i}`).concat([0, 1, 2, 3, 4].map((i) => `after write ${i}`)));
    await waitFor("the three replicas to reach the same commit", 15_000, async () => {
      const statuses = await Promise.all(cluster.urls.map(statusOf));
      if (statuses.some((s) => s === null || s.status !== "normal")) return null;
      return statuses.every((s) => s!.commit === statuses[0]!.commit) ? true : null;
    }, logs);
  } finally {
    await Promise.all(replicas.map((r) => stopChild(r)));
    rmSync(dir, { recursive: true, force: true });
  }
});
