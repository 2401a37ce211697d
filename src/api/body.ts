/**
 * Request bodies in and response bodies out: size-limited reading (before any parsing),
 * JSON or CBOR decoding by content type, and the JSON view of application values.
 * @module
 */
import { decodeValue, encodeValue } from "../app/value_codec.ts";

/** Content type of CBOR bodies. */
export const cborContentType = "application/cbor";
/** Content type of JSON bodies. */
export const jsonContentType = "application/json";

/** Why a body could not be read. */
export type BodyFault = { readonly code: "too_large" | "bad_request"; readonly message: string };

/**
 * Reads a request body, refusing it as soon as it exceeds `sizeMax` bytes (by its
 * Content-Length when given, else while streaming), so an oversized body is never held.
 */
export async function readBodyLimited(request: Request, sizeMax: number): Promise<Uint8Array | BodyFault> {
  const tooLarge: BodyFault = { code: "too_large", message: `request body larger than ${sizeMax} bytes` };
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    const size = Number(declared);
    if (!Number.isSafeInteger(size) || size < 0) return { code: "bad_request", message: "invalid Content-Length" };
    if (size > sizeMax) return tooLarge;
    // The declared length is within the limit and the HTTP server holds the body to it, so
    // read it whole: on Node, @hono/node-server reads arrayBuffer() straight from the
    // socket, where touching request.body builds a web Request and stream per request
    // (that was most of the server's CPU per request in bench cluster --protocol http).
    if (size === 0) return new Uint8Array(0);
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.length > sizeMax) return tooLarge;
    return bytes;
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > sizeMax) {
      await reader.cancel().catch(() => {});
      return tooLarge;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaType(header: string | null | undefined): string {
  return (header ?? "").split(";")[0]!.trim().toLowerCase();
}

/**
 * Decodes a body as JSON or CBOR according to `contentType`. An empty body decodes to
 * `undefined` whatever the type (for routes whose body is optional).
 */
export function decodeBody(body: Uint8Array, contentType: string | null): { value: unknown } | BodyFault {
  if (body.length === 0) return { value: undefined };
  const type = mediaType(contentType);
  if (type === jsonContentType) {
    try {
      return { value: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body)) };
    } catch (error) {
      return { code: "bad_request", message: `malformed JSON body: ${(error as Error).message}` };
    }
  }
  if (type === cborContentType) {
    try {
      return { value: decodeValue(body) };
    } catch (error) {
      return { code: "bad_request", message: `malformed CBOR body: ${(error as Error).message}` };
    }
  }
  return { code: "bad_request", message: `Content-Type must be ${jsonContentType} or ${cborContentType}, got "${type}"` };
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * The JSON view of an application value (JSON cannot carry every CBOR value; CBOR
 * clients get exact values): bigints as numbers when safe, else decimal strings; byte
 * strings as base64 strings; Maps as objects when every key is a string, else arrays of
 * [key, value] pairs; Sets as arrays; undefined as null.
 */
export function toJsonValue(value: unknown, depth = 0): unknown {
  if (depth > 256) throw new TypeError("value nested deeper than 256 levels");
  if (value === undefined || value === null) return null;
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) && BigInt(Number(value)) === value ? Number(value) : value.toString();
  if (typeof value !== "object") return value;
  if (value instanceof Uint8Array) return base64(value);
  if (Array.isArray(value)) return value.map((item) => toJsonValue(item, depth + 1));
  if (value instanceof Set) return [...value].map((item) => toJsonValue(item, depth + 1));
  if (value instanceof Map) {
    if ([...value.keys()].every((key) => typeof key === "string")) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of value) out[key as string] = toJsonValue(item, depth + 1);
      return out;
    }
    return [...value].map(([key, item]) => [toJsonValue(key, depth + 1), toJsonValue(item, depth + 1)]);
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = toJsonValue(item, depth + 1);
  return out;
}

/** True when the Accept header asks for CBOR. */
export function wantsCbor(accept: string | null | undefined): boolean {
  return (accept ?? "").toLowerCase().includes(cborContentType);
}

/** A success response in the format the client asked for (CBOR exact, JSON as above). */
export function valueResponse(value: unknown, cbor: boolean, status = 200): Response {
  if (cbor) {
    const bytes = encodeValue(value);
    return new Response(bytes as Uint8Array<ArrayBuffer>, { status, headers: { "content-type": cborContentType } });
  }
  return new Response(JSON.stringify(toJsonValue(value)), { status, headers: { "content-type": jsonContentType } });
}
