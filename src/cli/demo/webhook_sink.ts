/**
 * A local webhook receiver that honours effect ids, as a payment provider or a mail
 * service would: it counts every delivery, applies each `Idempotency-Key` once, and
 * remembers what each application carried so a checker can ask whether any business
 * action (a transfer) was applied under two different ids, or not at all.
 * @module
 */
import { createServer } from "node:http";
import type { Server } from "node:http";

/** What the sink saw. */
export interface SinkCounts {
  /** HTTP deliveries received (retries included). */
  readonly deliveries: number;
  /** Deliveries of an id already applied: answered 200 without applying again. */
  readonly duplicateDeliveries: number;
  /** Distinct ids applied. */
  readonly applied: number;
  /** Deliveries without an Idempotency-Key header (must be 0). */
  readonly withoutKey: number;
}

/** A running sink. */
export interface WebhookSink {
  readonly url: string;
  counts(): SinkCounts;
  /** Applied bodies by id. */
  applications(): ReadonlyMap<string, unknown>;
  close(): Promise<void>;
}

/** Ids remembered by the sink at most: bounds its memory in long runs. */
export const sinkIdsMax = 1_000_000;

/** Starts a sink on 127.0.0.1 (a free port). */
export function startWebhookSink(): Promise<WebhookSink> {
  const applied = new Map<string, unknown>();
  let deliveries = 0;
  let duplicateDeliveries = 0;
  let withoutKey = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Uint8Array[] = [];
    request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    request.on("end", () => {
      deliveries++;
      const key = request.headers["idempotency-key"];
      if (typeof key !== "string" || key === "") {
        withoutKey++;
        response.writeHead(400).end("missing Idempotency-Key");
        return;
      }
      if (applied.has(key)) {
        duplicateDeliveries++;
      } else if (applied.size < sinkIdsMax) {
        let body: unknown = null;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          body = Buffer.concat(chunks).toString("utf8");
        }
        applied.set(key, body);
      }
      response.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}/webhook`,
        counts: () => ({ deliveries, duplicateDeliveries, applied: applied.size, withoutKey }),
        applications: () => applied,
        close: () => new Promise<void>((done) => {
          server.closeAllConnections?.();
          server.close(() => done());
        }),
      });
    });
  });
}

/** What the sink applied, compared with the ops whose events committed a notification. */
export interface ApplicationAudit {
  /** Committed ops whose webhook was never applied. */
  readonly missing: number;
  /**
   * Applications beyond one per committed op: the same op applied under several ids, or a
   * webhook whose op never committed (an effect of an uncommitted event).
   */
  readonly doubled: number;
}

/**
 * Audits applied webhook bodies (each carrying the `op` of the event that produced it)
 * against the set of committed ops: every committed op applied exactly once.
 */
export function auditApplications(applied: Iterable<unknown>, committedOps: ReadonlySet<number>): ApplicationAudit {
  const appliedByOp = new Map<number, number>();
  let doubled = 0;
  for (const body of applied) {
    const op = (body as { op?: unknown } | null)?.op;
    if (typeof op !== "number" || !committedOps.has(op)) doubled++;
    else appliedByOp.set(op, (appliedByOp.get(op) ?? 0) + 1);
  }
  let missing = 0;
  for (const op of committedOps) if (!appliedByOp.has(op)) missing++;
  for (const count of appliedByOp.values()) if (count > 1) doubled += count - 1;
  return { missing, doubled };
}
