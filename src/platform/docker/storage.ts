/**
 * Whether the engine's storage driver can bound a container's writable layer itself
 * (HostConfig.StorageOpt size), read from GET /info. See docs/architecture.md, "The host's own
 * resources".
 */
import type { InfoJson } from "./docker-api.ts";

export interface StorageInfo {
  /** The storage driver, e.g. "overlay2". */
  driver: string;
  /** The filesystem under it, e.g. "extfs" or "xfs"; "" when the engine does not say. */
  backingFs: string;
  /** The engine's data root on its host, e.g. "/var/lib/docker". */
  dataRoot: string;
  /** true when a create may ask for StorageOpt size (confirmed by the first create that does). */
  quota: boolean;
  /** Why, for the start-up log and doctor. */
  reason: string;
}

/** Drivers that take a size option on any backing filesystem they run on. */
const SIZED_DRIVERS = new Set(["btrfs", "zfs", "devicemapper"]);
/** Drivers that take one only on xfs mounted with project quotas (pquota). */
const XFS_QUOTA_DRIVERS = new Set(["overlay2", "vfs"]);

export function storageOf(info: InfoJson): StorageInfo {
  const driver = info.Driver ?? "";
  const backingFs = info.DriverStatus?.find(([k]) => k === "Backing Filesystem")?.[1] ?? "";
  const dataRoot = info.DockerRootDir ?? "/var/lib/docker";
  const base = { driver, backingFs, dataRoot };
  if (SIZED_DRIVERS.has(driver))
    return {
      ...base,
      quota: true,
      reason: `the ${driver} storage driver bounds each container's layer`,
    };
  if (XFS_QUOTA_DRIVERS.has(driver) && backingFs === "xfs") {
    return {
      ...base,
      quota: true,
      reason: `${driver} on xfs bounds each container's layer (needs the pquota mount option; the first start confirms it)`,
    };
  }
  const on = backingFs ? `${driver} on ${backingFs}` : driver || "this storage driver";
  return {
    ...base,
    quota: false,
    reason: `${on} cannot bound a container's layer (StorageOpt size needs xfs with pquota, btrfs, zfs or devicemapper)`,
  };
}

/** The engine refused a create for its StorageOpt (no project quota on the filesystem, quota off on btrfs, ...). */
export function isStorageOptRefusal(reason: string): boolean {
  return /storage[- ]?opt|storage option|quota/i.test(reason);
}
