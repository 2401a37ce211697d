/**
 * The closed set of error codes the HTTP API answers with, their HTTP statuses, and
 * whether each is definite (the request was certainly not applied, or was rejected) or
 * leaves the outcome unknown. Shared by the API and the client library.
 * @module
 */

/** Stable error codes of the HTTP API. */
export type ApiErrorCode =
  | "not_primary" //     definite: this replica is not the primary; `primary` is its API address when known
  | "session_evicted" // definite: the session is gone (evicted or unknown); register a new one
  | "too_large" //       definite: the body exceeds the size limit
  | "bad_request" //     definite: malformed body, parameters or content type
  | "rejected" //        definite: the application threw; message is its message
  | "unauthorized" //    definite: missing or wrong bearer token
  | "not_found" //       definite: no such route, effect or channel
  | "unavailable" //     not executed now (no quorum, view change, queue full); retry elsewhere or later
  | "timeout"; //        INDEFINITE: no answer in time; the request may or may not have been applied

/** Every code with its HTTP status. */
// not_primary is 409, not 421 Misdirected Request: fetch implementations (undici) resend a
// request answered with 421 on their own, which would hide the hint and double the call.
export const apiErrorStatus: Readonly<Record<ApiErrorCode, number>> = {
  not_primary: 409,
  session_evicted: 410,
  too_large: 413,
  bad_request: 400,
  rejected: 422,
  unauthorized: 401,
  not_found: 404,
  unavailable: 503,
  timeout: 504,
};

/** All codes, for validation of answers read off the wire. */
export const apiErrorCodes = Object.keys(apiErrorStatus) as ApiErrorCode[];

/** An error as the API returns it: `{ "error": { code, message, primary? } }`. */
export interface ApiError {
  readonly code: ApiErrorCode;
  readonly message: string;
  /** For not_primary: the primary's API base URL, when this replica knows it. */
  readonly primary?: string;
}

/** True when `value` is one of the API's error codes. */
export function isApiErrorCode(value: unknown): value is ApiErrorCode {
  return typeof value === "string" && Object.hasOwn(apiErrorStatus, value);
}
