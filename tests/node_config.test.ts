import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, heapGrowthPercentDefault, parseConfig, readSecret } from "../src/node/config.ts";

const good = {
  cluster: "payments-test",
  replicas: [
    { bus: "127.0.0.1:4001", api: "127.0.0.1:5001", dataDir: "/tmp/a" },
    { bus: "127.0.0.1:4002", api: "127.0.0.1:5002", dataDir: "/tmp/b" },
    { bus: "127.0.0.1:4003", api: "127.0.0.1:5003", dataDir: "/tmp/c" },
  ],
  secret: { value: "0123456789abcdef0123" },
};

test("a valid configuration parses with defaults filled in", () => {
  const config = parseConfig(good);
  assert.equal(config.replicas.length, 3);
  assert.equal(config.replicas[1]!.bus.port, 4002);
  assert.equal(config.replicas[2]!.apiUrl, "http://127.0.0.1:5003");
  assert.equal(config.cluster.length, 16);
  assert.equal(config.readAccess, "public");
  assert.equal(config.tickMs, 10);
  assert.equal(config.checkpointIntervalOps, 32768);
  assert.equal(config.ioPollMicros, 0);
  assert.equal(parseConfig({ ...good, ioPollMicros: 500 }).ioPollMicros, 500);
  assert.equal(config.heapGrowthPercent, heapGrowthPercentDefault);
  assert.equal(parseConfig({ ...good, heapGrowthPercent: 0 }).heapGrowthPercent, 0);
});

test("each invalid field is named in the error", () => {
  const cases: [unknown, string][] = [
    [{ ...good, cluster: undefined }, "cluster"],
    [{ ...good, replicas: good.replicas.slice(0, 2) }, "replicas"],
    [{ ...good, replicas: [good.replicas[0], { ...good.replicas[1], bus: "nope" }, good.replicas[2]] }, "replicas[1].bus"],
    [{ ...good, replicas: [good.replicas[0], { ...good.replicas[1], bus: "127.0.0.1:4001" }, good.replicas[2]] }, "replicas[1].bus"],
    [{ ...good, secret: "plain" }, "secret"],
    [{ ...good, tickMs: 0 }, "tickMs"],
    [{ ...good, ioPollMicros: -1 }, "ioPollMicros"],
    [{ ...good, ioPollMicros: 100_001 }, "ioPollMicros"],
    [{ ...good, heapGrowthPercent: -5 }, "heapGrowthPercent"],
    [{ ...good, heapGrowthPercent: 1001 }, "heapGrowthPercent"],
    [{ ...good, readAccess: "everyone" }, "readAccess"],
    [[], ""],
  ];
  for (const [raw, field] of cases) {
    assert.throws(() => parseConfig(raw), (error: unknown) => error instanceof ConfigError && error.field === field, field);
  }
});

test("a short secret is refused", () => {
  assert.throws(() => readSecret({ value: "short" }, "secret"), ConfigError);
  assert.equal(readSecret({ value: "a-long-enough-secret" }, "secret"), "a-long-enough-secret");
});
