/**
 * The bank workload of a chaos run: concurrent transfers between accounts of
 * examples/bank.ts, each transfer's webhook delivered to a local sink that honours effect
 * ids. After the run: money is conserved, every committed transfer's webhook was applied
 * exactly once at the sink and none is missing, and the committed transfers number
 * between the acknowledged ones and the acknowledged plus unknown ones.
 * @module
 */
import { Client } from "../client/client.ts";
import { OutcomeUnknownError, RejectedError } from "../client/errors.ts";
import type { OperationStats } from "./workload_kv.ts";

type BankClient = Client<typeof import("../../examples/bank.ts").default>;

/** One recorded transfer (the bank history, one JSON object a line in history.jsonl). */
export interface TransferRecord {
  readonly process: number;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
  readonly callMs: number;
  readonly returnMs: number;
  readonly outcome: "ok" | "rejected" | "fail" | "info";
}

/** Records and counts of a bank run. */
export interface BankRecord {
  readonly transfers: TransferRecord[];
  readonly stats: OperationStats;
  rejected: number;
}

/** Transfers recorded at most (bounds memory). */
export const transfersMax = 1_000_000;

/** Accounts and the deposit each gets. */
export const bankAccounts = Array.from({ length: 16 }, (_, i) => `acct-${i}`);
export const bankDepositEach = 1_000_000;

/** A bank client with the chaos run's timeouts. */
export function bankClient(addresses: readonly string[], token: string, deadlineMs: number): BankClient {
  return new Client({ addresses, token, deadlineMs, timeoutMs: Math.min(2000, deadlineMs) });
}

/** Configures the webhook and opens the accounts (before any fault). */
export async function setUpBank(addresses: readonly string[], token: string, webhookUrl: string): Promise<void> {
  const admin = bankClient(addresses, token, 30_000);
  await admin.submit({ type: "configure", webhookUrl });
  for (const account of bankAccounts) {
    await admin.submit({ type: "open", account });
    await admin.submit({ type: "deposit", account, amount: bankDepositEach });
  }
  admin.close();
}

/** Runs `clientCount` transfer loops until `stop` resolves. */
export async function runBankWorkload(options: {
  readonly addresses: readonly string[];
  readonly token: string;
  readonly clientCount: number;
  readonly random: () => number;
  readonly nowMs: () => number;
  readonly stop: Promise<void>;
  readonly deadlineMs: number;
}): Promise<BankRecord> {
  const record: BankRecord = { transfers: [], stats: { ok: 0, fail: 0, info: 0, latenciesMs: [], okAtMs: [] }, rejected: 0 };
  let stopped = false;
  void options.stop.then(() => {
    stopped = true;
  });
  await Promise.all(Array.from({ length: options.clientCount }, async (_, slot) => {
    let process = slot;
    let client = bankClient(options.addresses, options.token, options.deadlineMs);
    while (!stopped && record.transfers.length < transfersMax) {
      const from = bankAccounts[Math.floor(options.random() * bankAccounts.length)]!;
      const to = bankAccounts[Math.floor(options.random() * bankAccounts.length)]!;
      if (from === to) continue;
      const amount = 1 + Math.floor(options.random() * 500);
      const callMs = options.nowMs();
      let outcome: TransferRecord["outcome"];
      try {
        await client.submit({ type: "transfer", from, to, amount });
        outcome = "ok";
      } catch (error) {
        if (error instanceof RejectedError) outcome = "rejected";
        else if (error instanceof OutcomeUnknownError) outcome = "info";
        else outcome = "fail";
      }
      const returnMs = options.nowMs();
      record.transfers.push({ process, from, to, amount, callMs, returnMs, outcome });
      if (outcome === "ok" || outcome === "rejected") {
        // A rejection is a definite, committed answer too: the cluster was available.
        if (outcome === "ok") record.stats.ok++;
        else record.rejected++;
        record.stats.latenciesMs.push(returnMs - callMs);
        record.stats.okAtMs.push(returnMs);
      } else if (outcome === "info") {
        record.stats.info++;
        client.close();
        process += options.clientCount;
        client = bankClient(options.addresses, options.token, options.deadlineMs);
      } else {
        record.stats.fail++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    client.close();
  }));
  return record;
}
