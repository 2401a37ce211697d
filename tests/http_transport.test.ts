import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fetchTransport, nodeHttpTransport } from "../src/kernel/http_transport.ts";
import type { HttpTransport } from "../src/kernel/http_transport.ts";

/** A receiver that answers every request with `pieces` written one by one (no Content-Length). */
async function withReceiver(pieces: string[], run: (url: string) => Promise<void>): Promise<void> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/plain" });
    const next = (i: number): void => {
      if (i === pieces.length) {
        response.end();
        return;
      }
      response.write(pieces[i]!);
      setTimeout(() => next(i + 1), 2);
    };
    next(0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
  } finally {
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const transports: [string, () => HttpTransport][] = [
  ["node:http", () => nodeHttpTransport(4)],
  ["fetch", () => fetchTransport(fetch)],
];

for (const [name, make] of transports) {
  test(`${name}: a body that arrives in several chunks is read whole, and one past bodySizeMax is cut there`, async () => {
    const pieces = ["a".repeat(3000), "b".repeat(3000), "é".repeat(1500), "c".repeat(3000)];
    const whole = pieces.join("");
    await withReceiver(pieces, async (url) => {
      const transport = make();
      try {
        const send = (bodySizeMax: number) =>
          transport.send({ url, method: "POST", headers: {}, body: "{}", signal: AbortSignal.timeout(5000), bodySizeMax });
        const full = await send(1 << 20);
        assert.equal(full.status, 200);
        assert.equal(full.truncated, false);
        assert.equal(full.body, whole);
        const cut = await send(4000);
        assert.equal(cut.truncated, true);
        assert.equal(cut.body, "a".repeat(3000) + "b".repeat(1000));
      } finally {
        transport.close();
      }
    });
  });
}
