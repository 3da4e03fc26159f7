import { describe, expect, it } from "vitest";
import { freshId, requestIdOf } from "../../src/http/request-id.ts";

describe("request ids", () => {
  it("keeps the client's id when it is sane, and makes one otherwise", () => {
    expect(requestIdOf("abc-DEF_1=")).toBe("abc-DEF_1=");
    for (const bad of [undefined, "", "a b", "x".repeat(256), ["a"], 7])
      expect(requestIdOf(bad)).toMatch(/^[0-9a-f]{8}-/);
    expect(requestIdOf("x".repeat(255))).toBe("x".repeat(255));
  });

  it("makes fresh ids in the form of a version 4 UUID, all different", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = freshId();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(10_000);
  });
});
