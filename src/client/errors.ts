/**
 * The closed set of errors the client library throws. `definite` tells the caller whether
 * the outcome is known: every class but {@link OutcomeUnknownError} means the request was
 * certainly not applied (or was applied and rejected by the application, which changes
 * nothing); an OutcomeUnknownError means it may or may not have been applied.
 * @module
 */

/** Base class of every error the client throws. */
export abstract class ChrononClientError extends Error {
  /** True when the outcome is known (nothing was applied, or the app rejected it). */
  abstract readonly definite: boolean;
  /** The API error code behind it, or "outcome_unknown" / "unavailable" for the client's own. */
  abstract readonly code: string;
}

/** The application threw while applying the event (or answering the query): its message. */
export class RejectedError extends ChrononClientError {
  override readonly name = "RejectedError";
  readonly definite = true;
  readonly code = "rejected";
}

/** The session is no longer in the cluster's client table; the client registers a new one next time. */
export class SessionEvictedError extends ChrononClientError {
  override readonly name = "SessionEvictedError";
  readonly definite = true;
  readonly code = "session_evicted";
}

/** The request body exceeds the cluster's limit. */
export class TooLargeError extends ChrononClientError {
  override readonly name = "TooLargeError";
  readonly definite = true;
  readonly code = "too_large";
}

/** The request was malformed, or named something that does not exist. */
export class BadRequestError extends ChrononClientError {
  override readonly name = "BadRequestError";
  readonly definite = true;
  readonly code = "bad_request";
}

/** The bearer token is missing or wrong. */
export class UnauthorizedError extends ChrononClientError {
  override readonly name = "UnauthorizedError";
  readonly definite = true;
  readonly code = "unauthorized";
}

/**
 * No replica answered a query or a session registration before the deadline. Nothing
 * was applied on the caller's behalf (neither changes the application's state).
 */
export class UnavailableError extends ChrononClientError {
  override readonly name = "UnavailableError";
  readonly definite = true;
  readonly code = "unavailable";
}

/**
 * The deadline passed without a definite answer: the request MAY OR MAY NOT have been
 * applied. Read the state (a query) to find out; do not blindly resubmit a non-idempotent
 * event.
 */
export class OutcomeUnknownError extends ChrononClientError {
  override readonly name = "OutcomeUnknownError";
  readonly definite = false;
  readonly code = "outcome_unknown";
  /** Attempts made for the request (all with the same request number). */
  readonly attempts: number;
  constructor(message: string, attempts: number) {
    super(message);
    this.attempts = attempts;
  }
}
