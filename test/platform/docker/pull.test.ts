import { describe, expect, it } from "vitest";
import { ImageNotFoundError, ImagePullFailedError } from "../../../src/engine/errors.ts";
import type { PullProgress } from "../../../src/engine/ports.ts";
import { DockerApiError } from "../../../src/platform/docker/docker-api.ts";
import {
  PullStreamError,
  pullError,
  readPullStream,
  splitImageRef,
} from "../../../src/platform/docker/pull.ts";

const enc = new TextEncoder();

function lines(...messages: object[]): AsyncIterable<Uint8Array> {
  const text = messages.map((m) => `${JSON.stringify(m)}\r\n`).join("");
  return (async function* () {
    // Split in odd places, as a socket would.
    for (let i = 0; i < text.length; i += 7) yield enc.encode(text.slice(i, i + 7));
  })();
}

describe("splitImageRef()", () => {
  it("separates the tag, defaulting to latest rather than every tag", () => {
    expect(splitImageRef("alpine")).toEqual({ fromImage: "alpine", tag: "latest" });
    expect(splitImageRef("meca-test/echo:1")).toEqual({ fromImage: "meca-test/echo", tag: "1" });
    expect(splitImageRef("127.0.0.1:5055/a/b")).toEqual({
      fromImage: "127.0.0.1:5055/a/b",
      tag: "latest",
    });
    expect(splitImageRef("127.0.0.1:5055/a/b:2")).toEqual({
      fromImage: "127.0.0.1:5055/a/b",
      tag: "2",
    });
  });

  it("pulls a digest as the tag, dropping a tag beside it", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    expect(splitImageRef(`r:5000/x@${digest}`)).toEqual({ fromImage: "r:5000/x", tag: digest });
    expect(splitImageRef(`x:1@${digest}`)).toEqual({ fromImage: "x", tag: digest });
  });
});

describe("readPullStream()", () => {
  it("passes status lines and throttles byte progress", async () => {
    let t = 0;
    const seen: string[] = [];
    const got: PullProgress[] = [];
    const progress = (current: number) => ({
      status: "Downloading",
      id: "3f4ca61aafcd",
      progress: "[=>   ]",
      progressDetail: { current, total: 5_000_000 },
    });
    await readPullStream(
      lines(
        { status: "Pulling from meca-test/pulled", id: "1" },
        { status: "Pulling fs layer", id: "3f4ca61aafcd", progressDetail: {} },
        progress(1_000_000),
        progress(2_000_000),
        progress(3_000_000),
        { status: "Pull complete", id: "3f4ca61aafcd", progressDetail: {} },
        { status: "Digest: sha256:abc" },
        { status: "Status: Downloaded newer image for 127.0.0.1:5055/meca-test/pulled:1" },
      ),
      {
        onProgress: (p) => {
          if (p.line !== undefined) seen.push(p.line);
          got.push(p);
        },
        throttleMs: 1000,
        now: () => (t += 600),
      },
    );
    // Every message counts as progress; layers and bytes add up as they come.
    expect(got).toHaveLength(8);
    expect(got[4]).toMatchObject({
      layers: 1,
      layersDone: 0,
      bytesDone: 3_000_000,
      bytesTotal: 5_000_000,
    });
    expect(got.at(-1)).toMatchObject({ layers: 1, layersDone: 1 });
    expect(seen).toEqual([
      "1: Pulling from meca-test/pulled",
      "3f4ca61aafcd: Pulling fs layer",
      "3f4ca61aafcd: Downloading 1.0 MB / 5.0 MB",
      "3f4ca61aafcd: Downloading 3.0 MB / 5.0 MB",
      "3f4ca61aafcd: Pull complete",
      "Digest: sha256:abc",
      "Status: Downloaded newer image for 127.0.0.1:5055/meca-test/pulled:1",
    ]);
  });

  it("throws the message of an error line", async () => {
    const stream = lines(
      { status: "Pulling from x" },
      {
        errorDetail: { message: "manifest for x:1 not found: manifest unknown" },
        error: "manifest for x:1 not found",
      },
    );
    await expect(readPullStream(stream)).rejects.toThrow(
      new PullStreamError("manifest for x:1 not found: manifest unknown"),
    );
  });
});

describe("pullError()", () => {
  it("says image not found for missing images and unreachable registries", () => {
    const cases = [
      new PullStreamError("manifest for x:1 not found: manifest unknown: manifest unknown"),
      new DockerApiError(
        404,
        "pull access denied for x, repository does not exist or may require 'docker login'",
      ),
      new DockerApiError(
        500,
        'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
      ),
      new DockerApiError(400, "invalid reference format"),
    ];
    for (const err of cases) {
      const mapped = pullError("x:1", err);
      expect(mapped).toBeInstanceOf(ImageNotFoundError);
      expect(mapped.cause).toBe(err);
    }
  });

  it("says the registry refused authentication, as IMAGE_PULL_FAILED", () => {
    for (const reason of [
      'Head "http://127.0.0.1:5056/v2/meca-test/private/manifests/1": no basic auth credentials',
      "unauthorized: authentication required",
    ]) {
      const mapped = pullError(
        "127.0.0.1:5056/meca-test/private:1",
        new DockerApiError(500, reason),
      );
      expect(mapped).toBeInstanceOf(ImagePullFailedError);
      expect(mapped.code).toBe("IMAGE_PULL_FAILED");
      expect(mapped.message).toContain("the registry refused authentication");
    }
  });

  it("says the pull failed for anything else", () => {
    const mapped = pullError(
      "x:1",
      new DockerApiError(500, "write /var/lib/docker/tmp: no space left on device"),
    );
    expect(mapped).toBeInstanceOf(ImagePullFailedError);
    expect(mapped).toMatchObject({ code: "IMAGE_PULL_FAILED" });
    expect(mapped.message).toBe(
      'Cannot pull image "x:1": write /var/lib/docker/tmp: no space left on device',
    );
  });
});
