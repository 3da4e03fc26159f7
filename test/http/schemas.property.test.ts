/**
 * POST / checks a valid body in plain code before zod (the hot path); zod
 * stays the one definition. This property keeps the two from drifting: the
 * plain check never accepts what zod refuses, and both read a body the same way.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { executeSchema, parseExecute } from "../../src/http/schemas.ts";

const value = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -3, max: 5000 }),
  fc.double({ min: -2, max: 70, noNaN: true }),
  fc.integer({ min: 0, max: 40 }).map((t) => t / 10),
  fc.constantFrom(0, -1, 1, 0.25, 1e-9, 2.0000000001, Number.MAX_VALUE),
  fc.string({ maxLength: 12 }),
  fc.constantFrom("", "container", "microVM", "vm", "echo:1", "SGXRAREQUEST"),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.constant({}),
);

/** Mostly valid values, sometimes any value: bodies near the boundary of what is valid. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: value });

const body = fc.record(
  {
    id: mostly(fc.constantFrom("echo:1", "registry:5000/a/b:2", "x")),
    input: mostly(fc.oneof(fc.constant(undefined), fc.string({ maxLength: 8 }))),
    runtime: mostly(fc.constantFrom(undefined, "", "container", "microVM")),
    use_sgx: mostly(fc.oneof(fc.constant(undefined), fc.boolean())),
    resource: mostly(
      fc.oneof(
        fc.constant(undefined),
        fc.record(
          {
            cpu: mostly(fc.integer({ min: 0, max: 40 }).map((t) => t / 10)),
            mem: mostly(fc.integer({ min: 0, max: 4096 })),
            use_gpu: mostly(fc.boolean()),
            gpu_count: mostly(fc.integer({ min: 1, max: 4 })),
            extra: value,
          },
          { requiredKeys: [] },
        ),
      ),
    ),
    extra: value,
  },
  { requiredKeys: [] },
);

describe("parseExecute()", () => {
  it("accepts exactly what the zod schema accepts, with the same reading", () => {
    fc.assert(
      fc.property(body, (b) => {
        const json = JSON.parse(JSON.stringify(b));
        const z = executeSchema.safeParse(json);
        let parsed: ReturnType<typeof parseExecute> | undefined;
        let error: unknown;
        try {
          parsed = parseExecute(json);
        } catch (e) {
          error = e;
        }
        if (!z.success) {
          expect(parsed).toBeUndefined();
          expect(error).toMatchObject({ kind: "bad_request" });
          return;
        }
        const d = z.data;
        expect(error).toBeUndefined();
        expect(parsed).toEqual({
          intent: {
            image: d.id,
            cpu: d.resource?.cpu,
            mem: d.resource?.mem,
            useGpu: d.resource?.use_gpu === true,
            gpuCount: d.resource?.gpu_count,
            runtime: d.runtime ?? "",
            useSgx: d.use_sgx === true,
          },
          input: d.input ?? "",
        });
      }),
      { numRuns: 3000 },
    );
  });
});
