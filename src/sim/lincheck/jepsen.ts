/**
 * Jepsen's two history formats (see shared/testdata/README.md): the etcd log of a
 * compare-and-set register, and EDN maps of a key-value store. Parsers turn them into
 * operations for {@link check}; writers produce them, so a history recorded by chronon's
 * tests can be checked by any other tool too.
 * @module
 */
import { HistoryError, operationsFromEvents } from "./history.ts";
import type { HistoryEvent, Operation } from "./history.ts";
import type { KvInput, KvOutput, RegisterInput, RegisterOutput } from "./model.ts";

const etcdLine = /jepsen\.util\s+-\s+(\d+)\t:(invoke|ok|fail|info)\t:(read|write|cas)\t(.*)$/;

function parseValue(text: string, line: number): number | null {
  const trimmed = text.trim();
  if (trimmed === "nil") return null;
  const value = Number(trimmed);
  if (!Number.isInteger(value)) throw new HistoryError(`line ${line}: '${trimmed}' is not a register value`);
  return value;
}

/** Parses an etcd-style cas-register log; lines that are not events are skipped. */
export function parseEtcdLog(text: string): Operation<RegisterInput, RegisterOutput>[] {
  const events: HistoryEvent<RegisterInput, RegisterOutput>[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, index) => {
    const match = etcdLine.exec(raw);
    if (match === null) return;
    const line = index + 1;
    const client = Number(match[1]);
    const kind = match[2] as "invoke" | "ok" | "fail" | "info";
    const f = match[3] as "read" | "write" | "cas";
    const argument = match[4]!.trim();
    if (kind === "invoke") {
      let input: RegisterInput;
      if (f === "read") input = { f: "read" };
      else if (f === "write") input = { f: "write", value: parseValue(argument, line) ?? Number.NaN };
      else {
        const pair = /^\[(\S+)\s+(\S+)\]$/.exec(argument);
        if (pair === null) throw new HistoryError(`line ${line}: cas argument '${argument}' is not [expected new]`);
        input = { f: "cas", expected: parseValue(pair[1]!, line) ?? Number.NaN, value: parseValue(pair[2]!, line) ?? Number.NaN };
      }
      events.push({ kind: "invoke", client, input, time: line });
    } else if (kind === "ok") {
      events.push({ kind: "ok", client, output: f === "read" ? parseValue(argument, line) : "ok", time: line });
    } else {
      events.push({ kind, client, time: line });
    }
  });
  return operationsFromEvents(events);
}

const ednField = (name: string) => new RegExp(`:${name}\\s+(?:"((?:[^"\\\\]|\\\\.)*)"|(:?[\\w-]+|nil))`);

function field(line: string, name: string): string | null {
  const match = ednField(name).exec(line);
  if (match === null) return null;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, "$1") : match[2]!;
}

/** Parses a kv history of EDN maps, one per line; blank lines are skipped. */
export function parseKvEdn(text: string): Operation<KvInput, KvOutput>[] {
  const events: HistoryEvent<KvInput, KvOutput>[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === "") return;
    const process = field(raw, "process");
    const type = field(raw, "type");
    const f = field(raw, "f");
    const key = field(raw, "key");
    const value = field(raw, "value");
    if (process === null || type === null || f === null || key === null) throw new HistoryError(`line ${line}: not a kv event map: ${raw.slice(0, 80)}`);
    const client = Number(process);
    if (!Number.isInteger(client)) throw new HistoryError(`line ${line}: process '${process}' is not a number`);
    const op = f.replace(/^:/, "");
    if (op !== "get" && op !== "put" && op !== "append") throw new HistoryError(`line ${line}: unknown :f ${f}`);
    const kind = type.replace(/^:/, "");
    if (kind === "invoke") {
      const input: KvInput = op === "get" ? { f: "get", key } : { f: op, key, value: value === null || value === "nil" ? "" : value };
      events.push({ kind: "invoke", client, input, time: line });
    } else if (kind === "ok") {
      events.push({ kind: "ok", client, output: op === "get" ? (value === null || value === "nil" ? "" : value) : "ok", time: line });
    } else if (kind === "fail" || kind === "info") {
      events.push({ kind, client, time: line });
    } else {
      throw new HistoryError(`line ${line}: unknown :type ${type}`);
    }
  });
  return operationsFromEvents(events);
}

/** Writes register events in the etcd log format. */
export function writeEtcdLog(events: readonly HistoryEvent<RegisterInput, RegisterOutput>[]): string {
  const open = new Map<number, RegisterInput>();
  const show = (v: number | null) => (v === null ? "nil" : String(v));
  const arg = (input: RegisterInput) => (input.f === "read" ? "nil" : input.f === "write" ? String(input.value) : `[${input.expected} ${input.value}]`);
  return events.map((event) => {
    if (event.kind === "invoke") {
      open.set(event.client, event.input);
      return `INFO  jepsen.util - ${event.client}\t:invoke\t:${event.input.f}\t${arg(event.input)}`;
    }
    const input = open.get(event.client);
    if (input === undefined) throw new HistoryError(`client ${event.client} completes without an invocation`);
    open.delete(event.client);
    const result = event.kind === "ok" && input.f === "read" ? show(event.output as number | null) : arg(input);
    return `INFO  jepsen.util - ${event.client}\t:${event.kind}\t:${input.f}\t${result}`;
  }).join("\n") + "\n";
}

/** Writes kv events as EDN maps, one per line. */
export function writeKvEdn(events: readonly HistoryEvent<KvInput, KvOutput>[]): string {
  const open = new Map<number, KvInput>();
  const quote = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`;
  return events.map((event) => {
    const input = event.kind === "invoke" ? event.input : open.get(event.client);
    if (input === undefined) throw new HistoryError(`client ${event.client} completes without an invocation`);
    if (input.f === "cas") throw new HistoryError("the kv EDN format has no cas");
    if (event.kind === "invoke") open.set(event.client, input);
    else open.delete(event.client);
    let value = "nil";
    if (event.kind === "invoke" && input.f !== "get") value = quote(input.value);
    if (event.kind === "ok") value = input.f === "get" ? quote(String(event.output)) : quote(input.value);
    if ((event.kind === "fail" || event.kind === "info") && input.f !== "get") value = quote(input.value);
    return `{:process ${event.client}, :type :${event.kind}, :f :${input.f}, :key ${quote(input.key)}, :value ${value}}`;
  }).join("\n") + "\n";
}
