import type { HostProbe } from "../../src/engine/ports.ts";

export class FakeHost implements HostProbe {
  constructor(
    public coresN = 8,
    public memMB = 16_384,
  ) {}
  async cores() {
    return this.coresN;
  }
  async memoryMB() {
    return this.memMB;
  }
  /** What availableMemoryMB() answers; a test lowers it to make the host short of memory. */
  availableMB: number | undefined = 8_192;
  async availableMemoryMB() {
    return this.availableMB;
  }
  async usage() {
    return { cpuPercent: 12.5, memPercent: 40 };
  }
}
