import { describe, expect, it } from "vitest";
import { isStorageOptRefusal, storageOf } from "../../../src/platform/docker/storage.ts";

const info = (driver: string, fs?: string) =>
  ({
    Driver: driver,
    DockerRootDir: "/data/docker",
    DriverStatus: fs ? [["Backing Filesystem", fs]] : [],
  }) as never;

describe("storageOf()", () => {
  it("asks the engine for the bound where its driver can hold one", () => {
    for (const d of ["btrfs", "zfs", "devicemapper"]) expect(storageOf(info(d)).quota).toBe(true);
    expect(storageOf(info("overlay2", "xfs"))).toMatchObject({
      quota: true,
      dataRoot: "/data/docker",
      reason: expect.stringContaining("pquota"),
    });
  });

  it("holds the bound itself on overlay2 over ext4 and says why", () => {
    expect(storageOf(info("overlay2", "extfs"))).toMatchObject({
      driver: "overlay2",
      backingFs: "extfs",
      quota: false,
      reason:
        "overlay2 on extfs cannot bound a container's layer (StorageOpt size needs xfs with pquota, btrfs, zfs or devicemapper)",
    });
    expect(storageOf(info("fuse-overlayfs")).quota).toBe(false);
  });
});

describe("isStorageOptRefusal()", () => {
  it("tells the engine's refusal of a size from other create errors", () => {
    expect(
      isStorageOptRefusal(
        "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
      ),
    ).toBe(true);
    expect(isStorageOptRefusal("Filesystem does not support, or has not enabled quotas")).toBe(
      true,
    );
    expect(isStorageOptRefusal("No such image: echo:1")).toBe(false);
    expect(isStorageOptRefusal("Conflict. The container name is already in use")).toBe(false);
  });
});
