import { test } from "node:test";
import assert from "node:assert/strict";
import { auditApplications } from "../src/cli/demo/webhook_sink.ts";

// The demos' verdicts rest on this audit: it must see each kind of violation.
test("the webhook audit counts missing, doubled and foreign applications", () => {
  const committed = new Set([1, 2, 3]);
  assert.deepEqual(auditApplications([{ op: 1 }, { op: 2 }, { op: 3 }], committed), { missing: 0, doubled: 0 });
  assert.deepEqual(auditApplications([{ op: 1 }, { op: 3 }], committed), { missing: 1, doubled: 0 });
  assert.deepEqual(auditApplications([{ op: 1 }, { op: 2 }, { op: 2 }, { op: 3 }], committed), { missing: 0, doubled: 1 });
  assert.deepEqual(auditApplications([{ op: 1 }, { op: 2 }, { op: 3 }, { op: 9 }, "junk"], committed), { missing: 0, doubled: 2 });
});
