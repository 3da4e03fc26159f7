/**
 * IPv4 CIDR arithmetic for the task subnet pool: each task's network takes one block of the
 * pool (see docs/architecture.md, "Isolation"). Pure functions over plain values.
 */

/** An IPv4 block: `base` as an unsigned 32-bit number, `bits` the prefix length. */
export interface Cidr {
  base: number;
  bits: number;
}

/** "10.201.0.0/16" as a block, or a reason why it is not one. */
export function parseCidr(text: string): Cidr | { error: string } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text.trim());
  if (!m) return { error: `"${text}" is not an IPv4 CIDR such as "10.201.0.0/16"` };
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 32)
    return { error: `"${text}" is not an IPv4 CIDR such as "10.201.0.0/16"` };
  const addr =
    (((octets[0]! << 24) >>> 0) + (octets[1]! << 16) + (octets[2]! << 8) + octets[3]!) >>> 0;
  const base = (addr & mask(bits)) >>> 0;
  if (base !== addr)
    return {
      error: `"${text}" has host bits set: the block starts at ${formatCidr({ base, bits })}`,
    };
  return { base, bits };
}

export function formatCidr(c: Cidr): string {
  return `${[24, 16, 8, 0].map((s) => (c.base >>> s) & 255).join(".")}/${c.bits}`;
}

/** The netmask of a prefix length, as an unsigned 32-bit number. */
export function mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** True when the two blocks share an address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const bits = Math.min(a.bits, b.bits);
  return (a.base & mask(bits)) >>> 0 === (b.base & mask(bits)) >>> 0;
}

/** How many blocks of `/bits` the pool holds. */
export function blockCount(pool: Cidr, bits: number): number {
  return bits < pool.bits ? 0 : 2 ** (bits - pool.bits);
}

/** The `index`-th block of `/bits` in the pool. */
export function block(pool: Cidr, bits: number, index: number): Cidr {
  return { base: (pool.base + index * 2 ** (32 - bits)) >>> 0, bits };
}
