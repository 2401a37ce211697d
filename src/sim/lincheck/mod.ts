/**
 * The linearizability checker: histories, models, the search, and Jepsen's formats.
 * @module
 */
export { check, checkStepsMaxDefault } from "./check.ts";
export type { CheckOptions, CheckResult } from "./check.ts";
export { HistoryError, operationsFromEvents } from "./history.ts";
export type { HistoryEvent, Operation } from "./history.ts";
export { casRegister, kv, kvCas } from "./model.ts";
export type { KvInput, KvOutput, Model, RegisterInput, RegisterOutput, RegisterState } from "./model.ts";
export { parseEtcdLog, parseKvEdn, writeEtcdLog, writeKvEdn } from "./jepsen.ts";
