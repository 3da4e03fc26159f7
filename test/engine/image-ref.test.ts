import { describe, expect, it } from "vitest";
import { imageAllowed, normalizeImageRef, parseImageRef } from "../../src/engine/image-ref.ts";

const hex = (n: number) => "0123456789abcdef".repeat(Math.ceil(n / 16)).slice(0, n);

describe("parseImageRef() digests", () => {
  it("takes sha256 with exactly 64 lowercase hex digits and sha512 with exactly 128", () => {
    expect(parseImageRef(`echo@sha256:${hex(64)}`)).toMatchObject({
      path: "echo",
      digest: `sha256:${hex(64)}`,
    });
    expect(parseImageRef(`echo:1@sha512:${hex(128)}`)).toMatchObject({
      tag: "1",
      digest: `sha512:${hex(128)}`,
    });
  });

  it("refuses a registered algorithm's digest of another length or case, naming the rule", () => {
    for (const bad of [hex(63), hex(65), hex(480), hex(64).toUpperCase()]) {
      expect(parseImageRef(`echo@sha256:${bad}`)).toEqual({
        error: "has a sha256 digest that is not 64 lowercase hex digits",
      });
    }
    for (const bad of [hex(64), hex(127), hex(129), `g${hex(128)}`, `${hex(128)}g`]) {
      expect(parseImageRef(`echo@sha512:${bad}`)).toEqual({
        error: "has a sha512 digest that is not 128 lowercase hex digits",
      });
    }
  });

  it("follows the OCI grammar for other algorithms and leaves them to the engine", () => {
    expect(parseImageRef(`name@x+y.z:${hex(32)}`)).toMatchObject({ digest: `x+y.z:${hex(32)}` });
    for (const bad of [
      `name@X:${hex(32)}`,
      `name@x+:${hex(32)}`,
      `name@+x:${hex(32)}`,
      "name@x:",
      `name@sha256:${hex(60)}/..`,
      "name@sha256:",
    ]) {
      expect(parseImageRef(bad), bad).toHaveProperty("error");
    }
  });
});

describe("parseImageRef() names, registries and tags", () => {
  it("splits registry, path, tag and digest", () => {
    expect(parseImageRef("echo")).toEqual({
      domain: undefined,
      path: "echo",
      tag: undefined,
      digest: undefined,
    });
    expect(parseImageRef("127.0.0.1:5055/meca-test/echo:1")).toEqual({
      domain: "127.0.0.1:5055",
      path: "meca-test/echo",
      tag: "1",
      digest: undefined,
    });
    expect(parseImageRef("[::1]:5000/echo")).toMatchObject({ domain: "[::1]:5000", path: "echo" });
    expect(parseImageRef("registry.example/a/b")).toMatchObject({
      domain: "registry.example",
      path: "a/b",
    });
    expect(parseImageRef("host:5000/a")).toMatchObject({ domain: "host:5000", path: "a" });
  });

  it("reads a first component as a registry only when it has a dot or a port or is localhost", () => {
    expect(parseImageRef("localhost/echo")).toMatchObject({ domain: "localhost", path: "echo" });
    for (const ref of ["library/echo", "localhostx/echo", "xlocalhost/echo", "my-org/echo"]) {
      expect(parseImageRef(ref), ref).toEqual({
        domain: undefined,
        path: ref,
        tag: undefined,
        digest: undefined,
      });
    }
  });

  it("refuses a first component that is a host name but not a repository name", () => {
    expect(parseImageRef("Upper/echo")).toEqual({ error: "is not a valid image reference" });
    expect(parseImageRef("Upper.example/echo")).toMatchObject({
      domain: "Upper.example",
      path: "echo",
    });
  });

  it("takes every separator of a path component", () => {
    expect(parseImageRef("a.b_c__d-e---f/g")).toMatchObject({ path: "a.b_c__d-e---f/g" });
    expect(parseImageRef("a:v1.0-rc_2")).toMatchObject({ path: "a", tag: "v1.0-rc_2" });
  });

  it("says why a reference is malformed", () => {
    expect(parseImageRef("")).toEqual({ error: "must not be empty" });
    expect(parseImageRef("Echo")).toEqual({
      error: "is not a valid image reference (expected name[:tag][@digest], lowercase)",
    });
    expect(parseImageRef(`a:${"t".repeat(129)}`)).toHaveProperty("error");
    expect(parseImageRef(`a:${"t".repeat(128)}`)).toMatchObject({ tag: "t".repeat(128) });
  });

  it("takes references up to 512 characters and repository names up to 255", () => {
    const at = (n: number) => `${"r".repeat(n - "/echo".length - ".x".length)}.x/echo`; // n characters: a registry, then /echo
    expect(parseImageRef(at(512))).toMatchObject({ path: "echo" });
    expect(parseImageRef(at(513))).toEqual({ error: "is longer than 512 characters" });
    expect(parseImageRef("p".repeat(255))).toMatchObject({ path: "p".repeat(255) });
    expect(parseImageRef("p".repeat(256))).toEqual({
      error: "has a repository name longer than 255 characters",
    });
    // The limit is on the path with a registry-less first component folded in.
    expect(parseImageRef(`${"p".repeat(200)}/${"q".repeat(55)}`)).toEqual({
      error: "has a repository name longer than 255 characters",
    });
  });
});

describe("normalizeImageRef()", () => {
  const norm = (ref: string) => {
    const r = parseImageRef(ref);
    if ("error" in r) throw new Error(r.error);
    return normalizeImageRef(r);
  };

  it("makes the implied latest tag explicit only when neither tag nor digest is given", () => {
    expect(norm("echo")).toBe("echo:latest");
    expect(norm("echo:1")).toBe("echo:1");
    expect(norm("127.0.0.1:5055/a/echo")).toBe("127.0.0.1:5055/a/echo:latest");
    expect(norm(`echo@sha256:${hex(64)}`)).toBe(`echo@sha256:${hex(64)}`);
    expect(norm(`localhost/echo:2@sha256:${hex(64)}`)).toBe(`localhost/echo:2@sha256:${hex(64)}`);
  });
});

describe("imageAllowed()", () => {
  it("allows everything without patterns", () => {
    expect(imageAllowed("anything:1", [])).toBe(true);
  });

  it("matches whole names, with * for any run of characters and nothing else special", () => {
    expect(imageAllowed("echo:1", ["other:*", "echo:*"])).toBe(true);
    expect(imageAllowed("echo:1", ["other:*"])).toBe(false);
    expect(imageAllowed("echo:10", ["echo:1"])).toBe(false);
    expect(imageAllowed("xecho:1", ["echo:*"])).toBe(false);
    expect(imageAllowed("reg.example/a/echo:1", ["reg.example/*"])).toBe(true);
    expect(imageAllowed("regxexample/a/echo:1", ["reg.example/*"])).toBe(false);
    for (const special of ["+", "?", "^", "$", "{", "}", "(", ")", "|", "[", "]", "\\"]) {
      const pattern = `a${special}b`;
      expect(imageAllowed(pattern, [pattern]), pattern).toBe(true);
      expect(imageAllowed("ab", [pattern]), pattern).toBe(false);
      expect(imageAllowed("aab", [pattern]), pattern).toBe(false);
    }
    // The same pattern twice reads the same (compiled once).
    expect(imageAllowed("echo:1", ["echo:*"])).toBe(true);
  });
});
