/**
 * The HTTP transport of the client on Node: node:http(s) with a keep-alive agent, one
 * per process. Node's fetch (undici) spent about 1 ms of CPU per request in the client
 * (web streams, Request/Response objects, abort signals): `bench cluster --protocol http`
 * found the load process, not the cluster, to be the limit. Bun's and Deno's fetch, and
 * browsers, keep using fetch. Loaded by a literal dynamic import, only on Node.
 * @module
 */
import http from "node:http";
import https from "node:https";

/** One answer: status, media type (lower case, no parameters) and body. */
export interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly bytes: Uint8Array;
}

/** Largest answer body read; a larger one fails the attempt. */
const answerSizeMax = 64 * 1024 * 1024;

const agents = {
  http: new http.Agent({ keepAlive: true }),
  https: new https.Agent({ keepAlive: true }),
};

/** POSTs `body` to `url`; rejects on a connection error, a timeout or an oversized answer. */
export function post(url: string, headers: Record<string, string>, body: Uint8Array, timeoutMs: number): Promise<HttpAnswer> {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  const module = secure ? https : http;
  return new Promise<HttpAnswer>((resolve, reject) => {
    const request = module.request(target, {
      method: "POST",
      agent: secure ? agents.https : agents.http,
      headers: { ...headers, "content-length": String(body.length) },
    }, (response) => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      response.on("data", (chunk: Uint8Array) => {
        size += chunk.length;
        if (size > answerSizeMax) {
          request.destroy(new Error(`answer larger than ${answerSizeMax} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => {
        clearTimeout(timer);
        const bytes = chunks.length === 1 ? chunks[0]! : new Uint8Array(Buffer.concat(chunks));
        const type = response.headers["content-type"] ?? "";
        resolve({ status: response.statusCode ?? 0, contentType: type.split(";")[0]!.trim().toLowerCase(), bytes });
      });
      response.on("error", (error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    request.on("error", (error: Error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.end(body);
  });
}
