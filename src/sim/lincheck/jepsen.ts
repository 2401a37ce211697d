/**
 * Jepsen's two history formats (shared/testdata/README.md), read and written:
 *
 * - the etcd log of a compare-and-set register, one event a line:
 *   `INFO  jepsen.util - 4<TAB>:invoke<TAB>:read<TAB>nil`; lines that are not events
 *   (other log output) are skipped;
 * - EDN maps of a key-value store, one a line:
 *   `{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}`.
 *
 * Parsers give events whose `time` is the file line (so errors and explanations point
 * into the file) and, through {@link operationsFromEvents}, operations for the checker.
 * Writers produce the same formats from recorded events, so a history chronon records can
 * be read by Jepsen's tools and by this checker alike. Malformed input throws
 * {@link HistoryError} naming the line and what is wrong.
 * @module
 */
import { HistoryError, operationsFromEvents } from "./history.ts";
import type { EventLocator, HistoryEvent, Operation } from "./history.ts";
import type { KvInput, KvOutput } from "./model_kv.ts";
import type { RegisterInput, RegisterOutput, RegisterValue } from "./model_register.ts";

type Kind = HistoryEvent["kind"];
const kinds: readonly string[] = ["invoke", "ok", "fail", "info"];
const locateLine: EventLocator = (_index, event) => `line ${event.time}`;

// ---- etcd log ----------------------------------------------------------------------

/** The part of a log line that makes it an event: `jepsen.util - <process><TAB>`. */
const etcdEventPrefix = /jepsen\.util\s+-\s+(\d+)\t(.*)$/;

function registerValue(text: string, line: number, what: string): RegisterValue {
  if (text === "nil") return null;
  if (!/^-?\d+$/.test(text)) throw new HistoryError(`line ${line}: ${what} '${text}' is neither an integer nor nil`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new HistoryError(`line ${line}: ${what} '${text}' is not a safe integer`);
  return value;
}

function casPair(text: string, line: number): { expected: RegisterValue; value: number } {
  const pair = /^\[\s*(\S+)\s+(\S+)\s*\]$/.exec(text);
  if (pair === null) throw new HistoryError(`line ${line}: cas argument '${text}' is not [expected new]`);
  const value = registerValue(pair[2]!, line, "cas new value");
  if (value === null) throw new HistoryError(`line ${line}: cas new value is nil`);
  return { expected: registerValue(pair[1]!, line, "cas expected value"), value };
}

/** Parses an etcd-style register log into events (time = line number). */
export function parseEtcdEvents(text: string): HistoryEvent<RegisterInput, RegisterOutput>[] {
  const events: HistoryEvent<RegisterInput, RegisterOutput>[] = [];
  const open = new Map<number, RegisterInput["f"]>();
  text.split("\n").forEach((raw, index) => {
    const line = index + 1;
    const match = etcdEventPrefix.exec(raw.replace(/\r$/, ""));
    if (match === null) return;
    const client = Number(match[1]);
    if (!Number.isSafeInteger(client)) throw new HistoryError(`line ${line}: process '${match[1]}' is too large`);
    const fields = match[2]!.split("\t");
    if (fields.length !== 3) throw new HistoryError(`line ${line}: expected ':type<TAB>:f<TAB>value' after the process, got ${fields.length} tab-separated field(s)`);
    const [typeField, fField, valueField] = fields as [string, string, string];
    const kind = typeField.replace(/^:/, "");
    if (!typeField.startsWith(":") || !kinds.includes(kind)) throw new HistoryError(`line ${line}: type '${typeField}' is not :invoke, :ok, :fail or :info`);
    const f = fField.replace(/^:/, "");
    if (!fField.startsWith(":") || (f !== "read" && f !== "write" && f !== "cas")) throw new HistoryError(`line ${line}: operation '${fField}' is not :read, :write or :cas`);
    const value = valueField.trim();
    if (kind === "invoke") {
      let input: RegisterInput;
      if (f === "read") input = { f: "read" };
      else if (f === "write") {
        const written = registerValue(value, line, "written value");
        if (written === null) throw new HistoryError(`line ${line}: a write of nil`);
        input = { f: "write", value: written };
      } else input = { f: "cas", ...casPair(value, line) };
      open.set(client, f);
      events.push({ kind: "invoke", client, time: line, input });
      return;
    }
    const invoked = open.get(client);
    if (invoked !== undefined && invoked !== f) throw new HistoryError(`line ${line}: process ${client} completes :${f} but its open operation is :${invoked}`);
    open.delete(client);
    if (kind === "ok") {
      events.push({ kind: "ok", client, time: line, output: f === "read" ? registerValue(value, line, "value read") : "ok" });
    } else {
      events.push({ kind: kind as "fail" | "info", client, time: line });
    }
  });
  return events;
}

/** Parses an etcd-style register log into operations for {@link check}. */
export function parseEtcdLog(text: string): Operation<RegisterInput, RegisterOutput>[] {
  return operationsFromEvents(parseEtcdEvents(text), locateLine);
}

const showRegister = (v: RegisterValue) => (v === null ? "nil" : String(v));
const registerArgument = (input: RegisterInput) =>
  input.f === "read" ? "nil" : input.f === "write" ? String(input.value) : `[${showRegister(input.expected)} ${input.value}]`;

/**
 * Writes register events in the etcd log format. An `ok` read prints the value read, an
 * `ok` write or cas its argument, `fail` the argument, `info` `:timed-out` (as Jepsen does).
 */
export function writeEtcdLog(events: readonly HistoryEvent<RegisterInput, RegisterOutput>[]): string {
  const open = new Map<number, RegisterInput>();
  const lines = events.map((event, index) => {
    let input: RegisterInput;
    let value: string;
    if (event.kind === "invoke") {
      input = event.input;
      open.set(event.client, input);
      value = registerArgument(input);
    } else {
      const invoked = open.get(event.client);
      if (invoked === undefined) throw new HistoryError(`event ${index}: client ${event.client} completes an operation it never invoked`);
      open.delete(event.client);
      input = invoked;
      if (event.kind === "info") value = ":timed-out";
      else if (event.kind === "ok" && input.f === "read") {
        if (event.output !== null && typeof event.output !== "number") throw new HistoryError(`event ${index}: a read returned '${String(event.output)}', not a value`);
        value = showRegister(event.output);
      } else value = registerArgument(input);
    }
    return `INFO  jepsen.util - ${event.client}\t:${event.kind}\t:${input.f}\t${value}`;
  });
  return lines.map((l) => l + "\n").join("");
}

// ---- kv EDN ------------------------------------------------------------------------

type EdnValue = { kind: "string" | "keyword" | "integer"; text: string } | { kind: "nil" };

/** Parses one flat EDN map of scalars (`{:k v, ...}`), enough for Jepsen's kv histories. */
function parseEdnMap(raw: string, line: number): Map<string, EdnValue> {
  const fields = new Map<string, EdnValue>();
  let at = 0;
  const fail = (what: string): never => {
    throw new HistoryError(`line ${line}, column ${at + 1}: ${what}`);
  };
  const skip = () => {
    while (at < raw.length && /[\s,]/.test(raw[at]!)) at++;
  };
  const token = (): EdnValue => {
    const c = raw[at];
    if (c === '"') {
      let text = "";
      at++;
      while (at < raw.length && raw[at] !== '"') {
        if (raw[at] === "\\") {
          const escaped = raw[at + 1];
          const map: Record<string, string> = { '"': '"', "\\": "\\", n: "\n", t: "\t", r: "\r" };
          if (escaped === undefined || map[escaped] === undefined) fail(`unknown string escape '\\${escaped ?? ""}'`);
          text += map[escaped!];
          at += 2;
        } else text += raw[at++];
      }
      if (at >= raw.length) fail("unterminated string");
      at++;
      return { kind: "string", text };
    }
    const word = /^[^\s,{}[\]"]+/.exec(raw.slice(at))?.[0];
    if (word === undefined) return fail(`expected a value, found '${c ?? "end of line"}'`);
    at += word.length;
    if (word === "nil") return { kind: "nil" };
    if (word.startsWith(":") && word.length > 1) return { kind: "keyword", text: word.slice(1) };
    if (/^-?\d+$/.test(word)) return { kind: "integer", text: word };
    return fail(`unsupported EDN value '${word}'`);
  };
  skip();
  if (raw[at] !== "{") fail("expected an EDN map '{...}'");
  at++;
  for (;;) {
    skip();
    if (at >= raw.length) fail("unterminated map: no '}'");
    if (raw[at] === "}") break;
    const key = token();
    if (key.kind !== "keyword") fail("expected a keyword as map key");
    skip();
    fields.set((key as { text: string }).text, token());
  }
  at++;
  skip();
  if (at < raw.length) fail(`unexpected text after the map: '${raw.slice(at, at + 20)}'`);
  return fields;
}

/** Parses a kv history of EDN maps into events (time = line number); blank lines are skipped. */
export function parseKvEvents(text: string): HistoryEvent<KvInput, KvOutput>[] {
  const events: HistoryEvent<KvInput, KvOutput>[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === "") return;
    const fields = parseEdnMap(raw.replace(/\r$/, ""), line);
    const need = (name: string): EdnValue => {
      const value = fields.get(name);
      if (value === undefined) throw new HistoryError(`line ${line}: the map has no :${name}`);
      return value;
    };
    const process = need("process");
    if (process.kind !== "integer" || !Number.isSafeInteger(Number(process.text))) throw new HistoryError(`line ${line}: :process is not an integer`);
    const client = Number(process.text);
    const type = need("type");
    if (type.kind !== "keyword" || !kinds.includes(type.text)) throw new HistoryError(`line ${line}: :type is not :invoke, :ok, :fail or :info`);
    const kind = type.text as Kind;
    const fValue = need("f");
    if (fValue.kind !== "keyword" || !["get", "put", "append"].includes(fValue.text)) throw new HistoryError(`line ${line}: :f is not :get, :put or :append`);
    const f = fValue.text as KvInput["f"];
    const keyValue = need("key");
    if (keyValue.kind !== "string" && keyValue.kind !== "integer") throw new HistoryError(`line ${line}: :key is not a string or an integer`);
    const key = keyValue.text;
    const value = fields.get("value") ?? { kind: "nil" };
    if (value.kind !== "nil" && value.kind !== "string") throw new HistoryError(`line ${line}: :value is not a string or nil`);
    const text = value.kind === "string" ? value.text : undefined;
    if (kind === "invoke") {
      if (f === "get") events.push({ kind, client, time: line, input: { f, key } });
      else {
        if (text === undefined) throw new HistoryError(`line ${line}: :${f} invoked with a nil :value`);
        events.push({ kind, client, time: line, input: { f, key, value: text } });
      }
    } else if (kind === "ok") {
      // A get of a missing key reads as the empty string.
      events.push({ kind, client, time: line, output: f === "get" ? (text ?? "") : "ok" });
    } else {
      events.push({ kind, client, time: line });
    }
  });
  return events;
}

/** Parses a kv history of EDN maps into operations for {@link check}. */
export function parseKvEdn(text: string): Operation<KvInput, KvOutput>[] {
  return operationsFromEvents(parseKvEvents(text), locateLine);
}

const quote = (s: string) => `"${s.replace(/[\\"]/g, "\\$&").replace(/\n/g, "\\n").replace(/\t/g, "\\t").replace(/\r/g, "\\r")}"`;

/**
 * Writes kv events as EDN maps, one a line. `:value` is the argument of a put or append,
 * the value an `ok` get read, and nil for a get otherwise.
 */
export function writeKvEdn(events: readonly HistoryEvent<KvInput, KvOutput>[]): string {
  const open = new Map<number, KvInput>();
  const lines = events.map((event, index) => {
    let input: KvInput;
    if (event.kind === "invoke") {
      input = event.input;
      open.set(event.client, input);
    } else {
      const invoked = open.get(event.client);
      if (invoked === undefined) throw new HistoryError(`event ${index}: client ${event.client} completes an operation it never invoked`);
      open.delete(event.client);
      input = invoked;
    }
    let value = "nil";
    if (input.f !== "get") value = quote(input.value);
    else if (event.kind === "ok") value = quote(event.output);
    return `{:process ${event.client}, :type :${event.kind}, :f :${input.f}, :key ${quote(input.key)}, :value ${value}}`;
  });
  return lines.map((l) => l + "\n").join("");
}
