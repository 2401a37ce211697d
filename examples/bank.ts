/**
 * A bank: accounts, deposits, transfers (rejected on overdraft), a notification webhook
 * and a channel entry per transfer, and a monthly fee fired by the schedule.
 *
 * Money is conserved: only deposits create it, transfers and fees move it (fees go to
 * the `fees` account), so the sum of all balances equals the sum of all deposits.
 * @module
 */
import { defineApp, emit, http, schedule } from "../mod.ts";
import type { ApplyResult, Effect, Event } from "../mod.ts";

/** The events a client (or the schedule) sends to the bank. */
export type BankEvent =
  | { readonly type: "configure"; readonly webhookUrl?: string | null; readonly monthlyFee?: number; readonly feeIntervalMs?: number }
  | { readonly type: "open"; readonly account: string }
  | { readonly type: "deposit"; readonly account: string; readonly amount: number }
  | { readonly type: "transfer"; readonly from: string; readonly to: string; readonly amount: number }
  | { readonly type: "monthly_fee" };

/** Queries the bank answers. */
export type BankQuery =
  | { readonly type: "balance"; readonly account: string }
  | { readonly type: "total" }
  | { readonly type: "accounts" };

/** Replies to bank events. */
export type BankReply =
  | { readonly configured: true }
  | { readonly opened: string }
  | { readonly balance: number }
  | { readonly collected: number };

/** One account. */
export interface Account {
  balance: number;
  transfers: number;
}

/** The bank's state. */
export interface BankState {
  accounts: Map<string, Account>;
  webhookUrl: string | null;
  monthlyFee: number;
  feeIntervalMs: number;
  /** True once the first monthly fee is scheduled (each fee schedules the next). */
  feeScheduled: boolean;
}

/** The account that collects fees. */
export const feeAccount = "fees";
const thirtyDaysMs = 30 * 24 * 3600 * 1000;

function amountOf(value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`amount must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function accountOf(state: BankState, name: string): Account {
  const account = state.accounts.get(name);
  if (account === undefined) throw new Error(`no account ${name}`);
  return account;
}

export default defineApp({
  genesis: (): BankState => ({
    accounts: new Map([[feeAccount, { balance: 0, transfers: 0 }]]),
    webhookUrl: null,
    monthlyFee: 0,
    feeIntervalMs: thirtyDaysMs,
    feeScheduled: false,
  }),

  apply(state: BankState, event: Event<BankEvent>): ApplyResult<BankState, BankReply, BankEvent> {
    const e = event.payload;
    const effects: Effect<BankEvent>[] = [];
    switch (e.type) {
      case "configure": {
        if (e.webhookUrl !== undefined) state.webhookUrl = e.webhookUrl;
        if (e.monthlyFee !== undefined) state.monthlyFee = e.monthlyFee === 0 ? 0 : amountOf(e.monthlyFee);
        if (e.feeIntervalMs !== undefined) state.feeIntervalMs = amountOf(e.feeIntervalMs);
        if (state.monthlyFee > 0 && !state.feeScheduled) {
          state.feeScheduled = true;
          effects.push(schedule<BankEvent>(state.feeIntervalMs, { type: "monthly_fee" }));
        }
        return { state, effects, reply: { configured: true } };
      }
      case "open": {
        if (typeof e.account !== "string" || e.account.length === 0) throw new TypeError("account must be a name");
        if (state.accounts.has(e.account)) throw new Error(`account ${e.account} exists`);
        state.accounts.set(e.account, { balance: 0, transfers: 0 });
        return { state, reply: { opened: e.account } };
      }
      case "deposit": {
        const amount = amountOf(e.amount);
        const account = accountOf(state, e.account);
        account.balance += amount;
        return { state, reply: { balance: account.balance } };
      }
      case "transfer": {
        const amount = amountOf(e.amount);
        if (e.from === e.to) throw new Error("transfer to the same account");
        const from = accountOf(state, e.from);
        const to = accountOf(state, e.to);
        // Checked before any write; even so, a throw after a write would be rolled back.
        if (from.balance < amount) throw new Error(`insufficient funds: ${e.from} has ${from.balance}, needs ${amount}`);
        from.balance -= amount;
        to.balance += amount;
        from.transfers++;
        const notice = { from: e.from, to: e.to, amount, op: event.header.index };
        effects.push(emit("transfers", notice));
        if (state.webhookUrl !== null) effects.push(http(state.webhookUrl, { body: notice }));
        return { state, effects, reply: { balance: from.balance } };
      }
      case "monthly_fee": {
        if (event.header.origin !== "schedule") throw new Error("monthly_fee is fired by the schedule only");
        let collected = 0;
        const fees = accountOf(state, feeAccount);
        for (const [name, account] of state.accounts) {
          if (name === feeAccount) continue;
          const fee = Math.min(account.balance, state.monthlyFee);
          account.balance -= fee;
          collected += fee;
        }
        fees.balance += collected;
        if (state.monthlyFee > 0) effects.push(schedule<BankEvent>(state.feeIntervalMs, { type: "monthly_fee" }));
        else state.feeScheduled = false;
        return { state, effects, reply: { collected } };
      }
      default:
        throw new TypeError(`unknown bank event ${(e as { type?: unknown }).type}`);
    }
  },

  query(state: BankState, q: BankQuery): number | null {
    switch (q.type) {
      case "balance":
        return state.accounts.get(q.account)?.balance ?? null;
      case "total": {
        let total = 0;
        for (const account of state.accounts.values()) total += account.balance;
        return total;
      }
      case "accounts":
        return state.accounts.size;
      default:
        throw new TypeError("unknown bank query");
    }
  },
});
