/**
 * chronon: a deterministic replicated log with a durable outbox.
 *
 * The public API. Everything an application or an operator's script needs is exported
 * from here; nothing else in the tree is a stable interface.
 * @module
 */
export { checksum, checksumHex } from "./src/codec/checksum.ts";

// The application contract (src/app/): define an app, its effects, and the wire helpers
// a client uses to talk to it.
export { defineApp } from "./src/app/app.ts";
export type {
  App,
  AppDefinition,
  ApplyContext,
  ApplyResult,
  EffectResult,
  EffectResultOutcome,
  Event,
  EventHeader,
  EventOrigin,
  HttpResult,
} from "./src/app/app.ts";
export { custom, emit, http, log, schedule } from "./src/app/effects.ts";
export type {
  CustomEffect,
  Effect,
  EmitEffect,
  HttpEffect,
  HttpMethod,
  HttpOptions,
  LogEffect,
  LogLevel,
  ScheduleEffect,
} from "./src/app/effects.ts";
export { decodeValue, encodeValue } from "./src/app/value_codec.ts";
export {
  decodeQueryResult,
  decodeReply,
  encodeAppQuery,
  encodeChannelQuery,
  encodeEffectId,
  encodeEffectsQuery,
  encodeEvent,
  encodeStatusQuery,
  operationEffectDiscard,
  operationEffectResults,
  operationEffectRetry,
  operationEvent,
  operationScheduleTick,
} from "./src/app/wire.ts";
export type { EffectOutcome, KernelErrorCode, KernelReply } from "./src/app/wire.ts";
// The kernel, for testing an app without a cluster and for custom drivers.
export { Executor } from "./src/kernel/executor.ts";
export type { ExecutorOptions, KernelStatus } from "./src/kernel/executor.ts";
export { EffectRunner } from "./src/kernel/effect_runner.ts";
export type { EffectHandler, EffectRunnerOptions } from "./src/kernel/effect_runner.ts";
export * from "./src/client/mod.ts";
// An application file as its own entry point (`bun app.ts start …`), and single binaries.
export { isMain, main, runMain } from "./src/runner.ts";
export type { ModuleMeta } from "./src/runner.ts";
