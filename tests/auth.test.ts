import { test } from "node:test";
import assert from "node:assert/strict";
import { createApi } from "../src/api/app.ts";
import { apiAccess, ConfigError, parseConfig } from "../src/node/config.ts";
import { FakeCluster } from "./api_fake_handle.ts";

const base = {
  cluster: "auth-test",
  replicas: [{ bus: "127.0.0.1:4001", api: "127.0.0.1:5001", dataDir: "/tmp/auth-a" }],
  secret: { value: "0123456789abcdef0123" },
};

/** The API of one fake replica with the access policy a node derives from `raw`. */
function apiOf(raw: Record<string, unknown>) {
  const config = parseConfig({ ...base, ...raw });
  const access = apiAccess(config);
  const cluster = new FakeCluster(1);
  cluster.apiUrls = ["http://r0"];
  const app = createApi(cluster.handles[0]!, {
    ...(access.token === undefined ? {} : { token: access.token }),
    tokenlessWrites: access.tokenlessWrites,
    readAccess: config.readAccess,
    bodySizeMax: 4096,
    requestTimeoutMs: 500,
  });
  const call = (method: string, path: string, body?: unknown, token?: string) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    return app.fetch(new Request(`http://r0${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }));
  };
  return { access, cluster, call };
}

async function code(response: Response): Promise<string> {
  if (response.ok) return "ok";
  const body = await response.json() as { error: { code: string; message: string } };
  return body.error.code;
}

test("without a token in the cluster file the API refuses every write, and says how to fix it", async () => {
  const { access, cluster, call } = apiOf({});
  assert.equal(access.tokenlessWrites, "refuse");
  assert.match(access.warning ?? "", /refuses every write/);
  const refused = await call("POST", "/v1/sessions", {});
  assert.equal(refused.status, 401);
  const body = await refused.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, "unauthorized");
  assert.match(body.error.message, /no API token is configured/);
  assert.equal(await code(await call("POST", "/v1/requests", { session: "ab".repeat(16), request: 1, event: 1 })), "unauthorized");
  assert.equal(await code(await call("POST", `/v1/effects/${"cd".repeat(16)}/retry`)), "unauthorized");
  // A bearer token does not help when none is configured.
  assert.equal(await code(await call("POST", "/v1/sessions", {}, "anything-at-all")), "unauthorized");
  // Reads stay public (readAccess defaults to "public").
  assert.equal(await code(await call("GET", "/v1/status")), "ok");
  assert.equal(await code(await call("POST", "/v1/queries", { query: "x" })), "ok");
  assert.equal(cluster.handles[0]!.calls.filter((c) => c === "registerSession" || c === "submit").length, 0, "no write reached the node");
});

test('"token": "none" opens writes, with a development-only warning', async () => {
  const { access, call } = apiOf({ token: "none" });
  assert.equal(access.tokenlessWrites, "open");
  assert.match(access.warning ?? "", /WARNING.*development only/);
  assert.equal(await code(await call("POST", "/v1/sessions", {})), "ok");
});

test("with a token, writes need it; a wrong or missing one is unauthorized", async () => {
  const { access, call } = apiOf({ token: { value: "a-token-of-enough-length" } });
  assert.equal(access.warning, null);
  assert.equal(access.token, "a-token-of-enough-length");
  assert.equal(await code(await call("POST", "/v1/sessions", {})), "unauthorized");
  assert.equal(await code(await call("POST", "/v1/sessions", {}, "a-token-of-wrong-length")), "unauthorized");
  assert.equal(await code(await call("POST", "/v1/sessions", {}, "a-token-of-enough-length")), "ok");
  assert.equal(await code(await call("GET", "/v1/status")), "ok", "reads public by default");
});

test('readAccess "token" makes reads need the token, and needs a real token', async () => {
  const { call } = apiOf({ token: { value: "a-token-of-enough-length" }, readAccess: "token" });
  assert.equal(await code(await call("GET", "/v1/status")), "unauthorized");
  assert.equal(await code(await call("GET", "/metrics")), "unauthorized");
  assert.equal(await code(await call("GET", "/v1/status", undefined, "a-token-of-enough-length")), "ok");
  assert.equal(await code(await call("GET", "/healthz")), "ok", "healthz is always public");
  for (const token of [undefined, "none"]) {
    assert.throws(() => parseConfig({ ...base, readAccess: "token", ...(token === undefined ? {} : { token }) }),
      (error: unknown) => error instanceof ConfigError && error.field === "readAccess");
  }
  assert.throws(() => parseConfig({ ...base, token: "open" }), (error: unknown) => error instanceof ConfigError && error.field === "token");
});
