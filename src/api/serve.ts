/**
 * Serves a fetch handler (the hono app) on the runtime's own HTTP server: Bun.serve on
 * Bun, Deno.serve on Deno, @hono/node-server on Node. The runtime globals are reached
 * through `globalThis` with minimal local types, and the Node adapter through a literal
 * dynamic import, so the module loads (and type-checks) everywhere.
 * @module
 */
import { assert } from "../assert.ts";

/** Something with a fetch handler, like a hono app. */
export interface FetchApp {
  fetch(request: Request): Response | Promise<Response>;
}

/** Where to listen; port 0 picks a free port. */
export interface ServeOptions {
  readonly hostname: string;
  readonly port: number;
}

/** A listening server. */
export interface ServerHandle {
  readonly hostname: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

interface BunServer {
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
interface BunGlobal {
  serve(options: { fetch: (request: Request) => Response | Promise<Response>; hostname: string; port: number }): BunServer;
}
interface DenoServer {
  readonly addr: { readonly port: number };
  shutdown(): Promise<void>;
}
interface DenoGlobal {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: unknown) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): DenoServer;
}

/** Listens with the runtime's server; resolves once it accepts connections. */
export async function serve(app: FetchApp, options: ServeOptions): Promise<ServerHandle> {
  assert(Number.isInteger(options.port) && options.port >= 0 && options.port <= 65535, "port in range");
  const fetch = (request: Request) => app.fetch(request);
  const bun = (globalThis as { Bun?: BunGlobal }).Bun;
  if (bun !== undefined) {
    const server = bun.serve({ fetch, hostname: options.hostname, port: options.port });
    return { hostname: options.hostname, port: server.port, close: async () => { await server.stop(true); } };
  }
  const deno = (globalThis as { Deno?: DenoGlobal }).Deno;
  if (deno !== undefined) {
    const server = deno.serve({ hostname: options.hostname, port: options.port, onListen: () => {} }, fetch);
    return { hostname: options.hostname, port: server.addr.port, close: () => server.shutdown() };
  }
  const { serve: nodeServe } = await import("@hono/node-server");
  return await new Promise<ServerHandle>((resolve, reject) => {
    const server = nodeServe({ fetch, hostname: options.hostname, port: options.port }, (info) => {
      server.off("error", reject);
      resolve({
        hostname: options.hostname,
        port: info.port,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          // Keep-alive connections would hold close() open until they time out.
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
      });
    });
    server.once("error", reject);
  });
}
