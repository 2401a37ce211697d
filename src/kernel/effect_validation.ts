/**
 * Checks the effects `apply` returned before any of them is recorded: shape, size and
 * kind. A malformed effect rejects the whole event (`invalid_effect`), identically on
 * every replica, because the check reads only the returned values.
 * @module
 */
import type { Effect } from "../app/effects.ts";
import { httpTimeoutMsMax } from "../app/effects.ts";
import type { KernelErrorCode } from "../app/wire.ts";

/** Longest channel name and custom effect type. */
export const nameLengthMax = 200;
/** Longest delay a schedule effect may ask for (about 10 years). */
export const scheduleDelayMsMax = 10 * 366 * 24 * 3600 * 1000;

const httpUrlPattern = /^https?:\/\/[^\s]+$/;
/** The URL of the last http effect that passed validation (strings are immutable). */
let lastValidUrl: string | null = null;
const methods = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);
const levels = new Set(["debug", "info", "warn", "error"]);

/** An event rejected by the kernel (not by the app): carries the reply's error code. */
export class KernelRejection extends Error {
  override readonly name = "KernelRejection";
  constructor(readonly code: KernelErrorCode, message: string) {
    super(message);
  }
}

function invalid(index: number, what: string): never {
  throw new KernelRejection("invalid_effect", `effect ${index}: ${what}`);
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= nameLengthMax;
}

/** Throws KernelRejection unless `effect` is a well-formed effect. */
export function validateEffect(effect: unknown, index: number): asserts effect is Effect {
  if (typeof effect !== "object" || effect === null) invalid(index, "not an object (use http, emit, schedule, log or custom)");
  const e = effect as Record<string, unknown>;
  switch (e.kind) {
    case "http": {
      if (typeof e.url !== "string") invalid(index, "http url must be an http(s) URL");
      // Apps send most effects to a few URLs: the last one that passed is not tested again.
      if (e.url !== lastValidUrl) {
        if (!httpUrlPattern.test(e.url)) invalid(index, "http url must be an http(s) URL");
        lastValidUrl = e.url;
      }
      if (typeof e.method !== "string" || !methods.has(e.method)) invalid(index, `http method ${String(e.method)} not supported`);
      if (typeof e.headers !== "object" || e.headers === null || Array.isArray(e.headers)) invalid(index, "http headers must be an object");
      const headers = e.headers as Record<string, unknown>;
      for (const name of Object.keys(headers)) {
        if (typeof headers[name] !== "string") invalid(index, `http header ${name} must be a string`);
      }
      if (!Number.isSafeInteger(e.timeoutMs) || (e.timeoutMs as number) < 1 || (e.timeoutMs as number) > httpTimeoutMsMax) {
        invalid(index, `http timeoutMs must be an integer in 1..${httpTimeoutMsMax}`);
      }
      return;
    }
    case "emit":
      if (!isName(e.channel)) invalid(index, `emit channel must be a string of 1..${nameLengthMax} characters`);
      return;
    case "schedule":
      if (!Number.isSafeInteger(e.delayMs) || (e.delayMs as number) < 0 || (e.delayMs as number) > scheduleDelayMsMax) {
        invalid(index, `schedule delayMs must be an integer in 0..${scheduleDelayMsMax}`);
      }
      return;
    case "log":
      if (typeof e.level !== "string" || !levels.has(e.level)) invalid(index, `log level ${String(e.level)} not supported`);
      if (typeof e.message !== "string") invalid(index, "log message must be a string");
      return;
    case "custom":
      if (!isName(e.type)) invalid(index, `custom type must be a string of 1..${nameLengthMax} characters`);
      return;
    default:
      invalid(index, `unknown kind ${String(e.kind)}`);
  }
}
