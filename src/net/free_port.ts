/**
 * A loopback TCP port free at the moment of asking, for local clusters (demo, dev, chaos,
 * benchmarks, tests).
 *
 * Ports come from below the kernel's ephemeral range (net.ipv4.ip_local_port_range), not
 * from port 0: the kernel hands ephemeral ports to outgoing connections too, so a port
 * chosen there and listened on a moment later can already be the local end of a client's
 * or a proxy's connection (chaos finding 9: a replica whose bus port had been taken that
 * way could never start). Below the range only an explicit bind takes a port, and each
 * candidate is checked by binding it. Callers that start several listeners ask once per
 * listener.
 * @module
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Lowest port handed out (above the registered ports most services use). */
const portMin = 20_000;
/** Tries before falling back to a port the kernel picks. */
const attemptsMax = 64;

/** The first port of the kernel's ephemeral range, read once per process. */
let ephemeralLow: number | null = null;

/** The first port of the kernel's ephemeral range (32768 when it cannot be read). */
function ephemeralPortMin(): number {
  ephemeralLow ??= readEphemeralPortMin();
  return ephemeralLow;
}

function readEphemeralPortMin(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > portMin + 1000 && low <= 65535) return low;
  } catch {
    // Not Linux, or /proc not mounted: the common default.
  }
  return 32768;
}

/** Binds `port` on 127.0.0.1 and releases it: the port bound, or null when it is taken. */
function tryPort(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(null));
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      const bound = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(bound > 0 ? bound : null));
    });
  });
}

/** A free port on 127.0.0.1 below the ephemeral range (see the module comment). */
export async function freePort(): Promise<number> {
  const high = ephemeralPortMin();
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const port = await tryPort(portMin + Math.floor(Math.random() * (high - portMin)));
    if (port !== null) return port;
  }
  const port = await tryPort(0);
  if (port === null) throw new Error("no port bound on 127.0.0.1");
  return port;
}
