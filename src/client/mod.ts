/**
 * The client library's public names: the {@link Client} and its closed set of errors.
 * @module
 */
export { Client, clientDefaults } from "./client.ts";
export type { ClientOptions, EventOf, QueryOf, QueryResultOf, ReplyOf } from "./client.ts";
export {
  BadRequestError, ChrononClientError, OutcomeUnknownError, RejectedError, SessionEvictedError,
  TooLargeError, UnauthorizedError, UnavailableError,
} from "./errors.ts";
