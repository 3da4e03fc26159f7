/**
 * DiskProbe over the Docker engine: how much each task container has written to its writable
 * layer, and how much room the engine's data root has left. Where the executor sees the engine's
 * host filesystem (a bare host), the layer is the overlay's upper directory, walked with lstat
 * (allocated blocks, so a sparse file counts what it takes); elsewhere the engine measures it
 * (inspect with size, SizeRw). See docs/architecture.md, "The host's own resources".
 */
import { existsSync } from "node:fs";
import { lstat, opendir, statfs } from "node:fs/promises";
import { join } from "node:path";
import type { DiskProbe } from "../../engine/ports.ts";
import type { DockerBackend } from "./docker-backend.ts";

export class DockerDisk implements DiskProbe {
  #backend: DockerBackend;
  #dataRoot: string | undefined;
  /** Each container's upper directory when the executor can read it, else null: measured by the engine. */
  #uppers = new Map<string, string | null>();

  /** `dataRoot`: the engine's data root where the executor sees it (a bare host); undefined where it does not. */
  constructor(backend: DockerBackend, o: { dataRoot?: string }) {
    this.#backend = backend;
    this.#dataRoot = o.dataRoot;
  }

  enforcedByEngine(): boolean {
    return this.#backend.enforcesDiskQuota;
  }

  async layerBytes(containerId: string): Promise<number | undefined> {
    try {
      let upper = this.#uppers.get(containerId);
      if (upper === undefined) {
        const json = await this.#backend.inspectJson(containerId);
        if (json === undefined) return undefined;
        const dir = json.GraphDriver?.Data?.UpperDir;
        upper = dir !== undefined && existsSync(dir) ? dir : null;
        this.#uppers.set(containerId, upper);
      }
      if (upper !== null) return await allocatedBytes(upper);
      const json = await this.#backend.inspectJson(containerId, { size: true });
      if (json === undefined) this.#uppers.delete(containerId);
      return json?.SizeRw;
    } catch {
      // Gone between two readings (its directory with it), or the engine away: no reading this time.
      this.#uppers.delete(containerId);
      return undefined;
    }
  }

  async freeMB(): Promise<number | undefined> {
    if (this.#dataRoot === undefined) return undefined;
    try {
      const s = await statfs(this.#dataRoot);
      return Math.floor((s.bavail * s.bsize) / (1024 * 1024));
    } catch {
      return undefined;
    }
  }
}

/** The data root when this process sees it: the executor runs on the engine's own host. */
export function visibleDataRoot(dataRoot: string): string | undefined {
  return existsSync(dataRoot) ? dataRoot : undefined;
}

/**
 * Bytes allocated to every file and folder under `dir`, links not followed, each counted as at
 * least one 4 KiB block: a flood of empty files fills the inode table, not the blocks, and is
 * bounded the same way. What the task removes while the walk runs is skipped, not an error:
 * churning files must not hide the rest from the count. Only `dir` itself missing (the container
 * gone) throws.
 */
async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  const pending = [dir];
  while (pending.length > 0) {
    const d = pending.pop()!;
    let entries;
    try {
      entries = await opendir(d);
    } catch (e) {
      if (d !== dir && isGone(e)) continue;
      throw e;
    }
    for await (const entry of entries) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) pending.push(path);
      try {
        total += Math.max(BLOCK, (await lstat(path)).blocks * 512);
      } catch (e) {
        if (!isGone(e)) throw e;
      }
    }
  }
  return total;
}

const BLOCK = 4096;

function isGone(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "ENOENT" || code === "ENOTDIR";
}
