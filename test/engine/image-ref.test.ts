import { describe, expect, it } from "vitest";
import { parseImageRef } from "../../src/engine/image-ref.ts";

const hex = (n: number) => "0123456789abcdef".repeat(Math.ceil(n / 16)).slice(0, n);

describe("parseImageRef() digests", () => {
  it("takes sha256 with exactly 64 lowercase hex digits and sha512 with exactly 128", () => {
    expect(parseImageRef(`echo@sha256:${hex(64)}`)).toMatchObject({ path: "echo", digest: `sha256:${hex(64)}` });
    expect(parseImageRef(`echo:1@sha512:${hex(128)}`)).toMatchObject({ tag: "1", digest: `sha512:${hex(128)}` });
  });

  it("refuses a registered algorithm's digest of another length or case, naming the rule", () => {
    for (const bad of [hex(63), hex(65), hex(480), hex(64).toUpperCase()]) {
      expect(parseImageRef(`echo@sha256:${bad}`)).toEqual({ error: "has a sha256 digest that is not 64 lowercase hex digits" });
    }
    expect(parseImageRef(`echo@sha512:${hex(64)}`)).toEqual({ error: "has a sha512 digest that is not 128 lowercase hex digits" });
  });

  it("follows the OCI grammar for other algorithms and leaves them to the engine", () => {
    expect(parseImageRef(`name@x+y.z:${hex(32)}`)).toMatchObject({ digest: `x+y.z:${hex(32)}` });
    for (const bad of [`name@X:${hex(32)}`, `name@x+:${hex(32)}`, `name@+x:${hex(32)}`, "name@x:", `name@sha256:${hex(60)}/..`, "name@sha256:"]) {
      expect(parseImageRef(bad), bad).toHaveProperty("error");
    }
  });
});
