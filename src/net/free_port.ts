/**
 * A loopback TCP port free at the moment of asking, for local clusters (demo, dev, chaos,
 * benchmarks, tests). Another process may take it before it is bound again; callers that
 * start several listeners at once ask once per listener.
 * @module
 */
import { createServer } from "node:net";

/** Binds port 0 on 127.0.0.1, reads the port the kernel chose, and releases it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port bound on 127.0.0.1"))));
    });
  });
}
