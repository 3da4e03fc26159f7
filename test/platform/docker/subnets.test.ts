import { describe, expect, it } from "vitest";
import {
  block,
  blockCount,
  formatCidr,
  overlaps,
  parseCidr,
  type Cidr,
} from "../../../src/platform/docker/subnets.ts";

const cidr = (s: string) => parseCidr(s) as Cidr;

describe("subnets", () => {
  it("parses and formats IPv4 blocks, refusing other text and set host bits", () => {
    expect(formatCidr(cidr("10.201.0.0/16"))).toBe("10.201.0.0/16");
    expect(cidr("0.0.0.0/0")).toEqual({ base: 0, bits: 0 });
    expect(cidr("255.255.255.255/32")).toEqual({ base: 0xffffffff, bits: 32 });
    expect(parseCidr("10.201.0.0")).toMatchObject({
      error: expect.stringContaining("not an IPv4 CIDR"),
    });
    expect(parseCidr("10.256.0.0/16")).toMatchObject({
      error: expect.stringContaining("not an IPv4 CIDR"),
    });
    expect(parseCidr("10.201.0.0/33")).toMatchObject({
      error: expect.stringContaining("not an IPv4 CIDR"),
    });
    expect(parseCidr("10.201.3.0/16")).toEqual({
      error: '"10.201.3.0/16" has host bits set: the block starts at 10.201.0.0/16',
    });
  });

  it("carves a pool into blocks in order", () => {
    const pool = cidr("10.201.0.0/24");
    expect(blockCount(pool, 28)).toBe(16);
    expect(blockCount(pool, 23)).toBe(0);
    expect(formatCidr(block(pool, 28, 0))).toBe("10.201.0.0/28");
    expect(formatCidr(block(pool, 28, 1))).toBe("10.201.0.16/28");
    expect(formatCidr(block(pool, 28, 15))).toBe("10.201.0.240/28");
    expect(formatCidr(block(cidr("10.201.0.0/16"), 28, 16))).toBe("10.201.1.0/28");
  });

  it("tells overlapping blocks from disjoint ones, whichever is larger", () => {
    expect(overlaps(cidr("10.201.0.0/16"), cidr("10.201.7.16/28"))).toBe(true);
    expect(overlaps(cidr("10.201.7.16/28"), cidr("10.201.0.0/16"))).toBe(true);
    expect(overlaps(cidr("10.201.0.0/28"), cidr("10.201.0.16/28"))).toBe(false);
    expect(overlaps(cidr("10.0.0.0/8"), cidr("11.0.0.0/8"))).toBe(false);
    expect(overlaps(cidr("0.0.0.0/0"), cidr("192.168.1.0/24"))).toBe(true);
  });
});
