/**
 * The linearizability checker: histories, models, the search, and Jepsen's formats.
 * See docs/lincheck.md.
 *
 * @example
 * ```ts
 * import { check, kvCas, operationsFromEvents } from "./mod.ts";
 * const result = check(kvCas, operationsFromEvents(events));
 * if (result.kind !== "linearizable") throw new Error(result.explanation);
 * ```
 * @module
 */
export { check, checkStepsMaxDefault } from "./check.ts";
export type { CheckKind, CheckOptions, CheckResult } from "./check.ts";
export { describeOperation } from "./explain.ts";
export type { Violation } from "./explain.ts";
export { eventsFromOperations, HistoryError, operationsFromEvents } from "./history.ts";
export type { EventLocator, HistoryEvent, Operation } from "./history.ts";
export { parseEtcdEvents, parseEtcdLog, parseKvEdn, parseKvEvents, writeEtcdLog, writeKvEdn } from "./jepsen.ts";
export { partitionByKey } from "./model.ts";
export type { Model, StepResult } from "./model.ts";
export { kv, kvCas } from "./model_kv.ts";
export type { KvCasInput, KvCasOutput, KvCasValue, KvInput, KvOutput } from "./model_kv.ts";
export { casRegister } from "./model_register.ts";
export type { RegisterInput, RegisterOutput, RegisterValue } from "./model_register.ts";
export { searchPartition } from "./search.ts";
export type { SearchOutcome } from "./search.ts";
