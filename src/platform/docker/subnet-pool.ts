/**
 * The start-up check of `task_subnet_pool`: it must not overlap a network of the engine that is
 * not a meca task network, nor a route of this host (its LAN, a VPN), or tasks could not be
 * reached or would shadow real addresses. See docs/architecture.md, "Isolation".
 */
import { readFileSync } from "node:fs";
import { LABELS, TASK_SUBNET_BITS } from "./labels.ts";
import type { NetworkSummary } from "./backend.ts";
import { formatCidr, overlaps, parseCidr, type Cidr } from "./subnets.ts";
import { TASK_BRIDGE_PREFIX } from "./task-networks.ts";

export interface HostRoute {
  iface: string;
  destination: Cidr;
}

/** The IPv4 routes of /proc/net/route (hex, little-endian), default routes left out. */
export function parseRoutes(text: string): HostRoute[] {
  const routes: HostRoute[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = leHex(f[1]!);
    const maskBits = popcount(leHex(f[7]!));
    if (maskBits === 0) continue; // the default route overlaps everything by definition
    routes.push({ iface: f[0]!, destination: { base: dest, bits: maskBits } });
  }
  return routes;
}

/** Why the pool cannot be used here, or undefined when it can. */
export function poolConflict(
  pool: string,
  networks: readonly NetworkSummary[],
  routes: readonly HostRoute[],
): string | undefined {
  const block = parseCidr(pool);
  if ("error" in block) return `task_subnet_pool ${block.error}`;
  const ours = networks.filter((n) => n.labels[LABELS.managed] === "1");
  for (const n of networks) {
    if (ours.includes(n)) continue;
    for (const subnet of n.subnets) {
      const c = parseCidr(subnet);
      if (!("error" in c) && overlaps(c, block))
        return `task_subnet_pool ${pool} overlaps Docker network "${n.name}" (${subnet}): choose another task_subnet_pool`;
    }
  }
  const ourSubnets = ours.flatMap((n) => n.subnets);
  for (const r of routes) {
    const dest = formatCidr(r.destination);
    if (ourSubnets.includes(dest)) continue; // the bridge of a meca task network
    // A Docker bridge to one /28 of the pool: a task network of an executor on another engine of
    // this host, or of one this engine did not list (it did not answer yet). The engine refuses
    // a taken subnet at each create anyway.
    if (
      (r.iface.startsWith("br-") || r.iface.startsWith(TASK_BRIDGE_PREFIX)) &&
      r.destination.bits === TASK_SUBNET_BITS &&
      overlaps(block, r.destination)
    )
      continue;
    if (overlaps(r.destination, block))
      return `task_subnet_pool ${pool} overlaps this host's route to ${dest} (dev ${r.iface}): choose another task_subnet_pool`;
  }
  return undefined;
}

/** The host's routes as this process sees them (in a container: the container's own). */
export function hostRoutes(): HostRoute[] {
  try {
    return parseRoutes(readFileSync("/proc/net/route", "utf8"));
  } catch {
    return [];
  }
}

function leHex(hex: string): number {
  const n = Number.parseInt(hex, 16) >>> 0;
  return (
    (((n & 0xff) << 24) |
      (((n >>> 8) & 0xff) << 16) |
      (((n >>> 16) & 0xff) << 8) |
      ((n >>> 24) & 0xff)) >>>
    0
  );
}

function popcount(n: number): number {
  let c = 0;
  for (let v = n >>> 0; v; v >>>= 1) c += v & 1;
  return c;
}
