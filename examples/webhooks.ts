/**
 * An order pipeline: placing an order calls an external payment service (an `http`
 * effect); the service's answer comes back through `onEffectResult`, which marks the
 * order paid (and announces it on the `orders` channel) or failed.
 *
 * The service receives the effect id as `Idempotency-Key`, so a retried or re-executed
 * call after a failover charges the customer once.
 * @module
 */
import { defineApp, emit, http, log } from "../mod.ts";
import type { ApplyResult, EffectResult, EffectResultOutcome, Event } from "../mod.ts";

/** Events. */
export type OrderEvent =
  | { readonly type: "configure"; readonly paymentUrl: string }
  | { readonly type: "place"; readonly orderId: string; readonly customer: string; readonly amount: number };

/** An order's life: awaiting_payment → paid | declined | payment_failed. */
export type OrderStatus = "awaiting_payment" | "paid" | "declined" | "payment_failed";

/** One order. */
export interface Order {
  customer: string;
  amount: number;
  status: OrderStatus;
  /** The payment service's reference (paid orders) or the failure reason. */
  detail: string | null;
}

/** The pipeline's state. */
export interface OrdersState {
  paymentUrl: string | null;
  orders: Map<string, Order>;
}

/** Queries. */
export type OrdersQuery = { readonly type: "order"; readonly orderId: string } | { readonly type: "count"; readonly status: OrderStatus };

export default defineApp({
  genesis: (): OrdersState => ({ paymentUrl: null, orders: new Map() }),

  apply(state: OrdersState, event: Event<OrderEvent>): ApplyResult<OrdersState, { status: OrderStatus } | { configured: true }, OrderEvent> {
    const e = event.payload;
    if (e.type === "configure") {
      state.paymentUrl = e.paymentUrl;
      return { state, reply: { configured: true } };
    }
    if (e.type !== "place") throw new TypeError("unknown order event");
    if (state.paymentUrl === null) throw new Error("payment service not configured");
    if (state.orders.has(e.orderId)) throw new Error(`order ${e.orderId} exists`);
    if (!Number.isSafeInteger(e.amount) || e.amount <= 0) throw new RangeError("amount must be a positive integer");
    state.orders.set(e.orderId, { customer: e.customer, amount: e.amount, status: "awaiting_payment", detail: null });
    return {
      state,
      effects: [http(state.paymentUrl, { body: { orderId: e.orderId, customer: e.customer, amount: e.amount }, timeoutMs: 5000 })],
      reply: { status: "awaiting_payment" },
    };
  },

  onEffectResult(state: OrdersState, result: EffectResult): EffectResultOutcome<OrdersState, OrderEvent> {
    if (result.effect.kind !== "http") return { state };
    const { orderId } = result.effect.body as { orderId: string };
    const order = state.orders.get(orderId);
    if (order === undefined || order.status !== "awaiting_payment") return { state };
    if (result.status === "dead_lettered") {
      order.status = "payment_failed";
      order.detail = result.error ?? null;
      return { state, effects: [log("warn", `payment for order ${orderId} failed: ${result.error}`)] };
    }
    // The body was committed with the outcome, so parsing it is deterministic.
    const answer = JSON.parse((result.value as { body: string }).body) as { approved?: boolean; reference?: string };
    order.status = answer.approved === true ? "paid" : "declined";
    order.detail = answer.reference ?? null;
    return { state, effects: [emit("orders", { orderId, status: order.status })] };
  },

  query(state: OrdersState, q: OrdersQuery): Order | number | null {
    if (q.type === "order") return state.orders.get(q.orderId) ?? null;
    let count = 0;
    for (const order of state.orders.values()) if (order.status === q.status) count++;
    return count;
  },
});
