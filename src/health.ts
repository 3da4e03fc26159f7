/**
 * `meca-executor health`: exits 0 when the executor on this host answers GET /health with 200,
 * else 1. The image's HEALTHCHECK runs it (a scratch image has no curl). It tries the configured
 * address, else loopback, then this container's own addresses, where a listener bound to one
 * network's address is found.
 */
import { networkInterfaces } from "node:os";

export async function checkHealth(o: {
  host?: string;
  port: number;
  timeoutMs?: number;
}): Promise<number> {
  const wildcard = o.host === undefined || o.host === "0.0.0.0" || o.host === "::";
  const hosts = wildcard ? ["127.0.0.1", ...ownAddresses()] : [o.host!];
  let last = "";
  for (const host of hosts) {
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${o.port}/health`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs ?? 3000) });
      await res.body?.cancel();
      if (res.ok) return 0;
      last = `${url} answered ${res.status}`;
      break; // it answers, but not healthy: no other address will say otherwise
    } catch (e) {
      last = `${url}: ${(e as Error).message}`;
    }
  }
  console.error(`unhealthy: ${last}`);
  return 1;
}

function ownAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === "IPv4" && !a.internal)
    .map((a) => a!.address);
}
