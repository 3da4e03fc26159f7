/**
 * Property-based fuzzing of every endpoint through app.request() on the fake
 * executor. Valid execute bodies, generated from the schema's rules (the image
 * reference grammar, tenths of a core, whole MB, the clients' shapes), must get
 * 200 with the task's answer; bodies with one rule broken must get a 4xx that
 * names the field. Random JSON, random values, random bytes, deep nesting and
 * huge strings get a 2xx or a 4xx, never a 5xx; nothing crashes, and no
 * reservation or container outlives what valid requests made.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseImageRef, normalizeImageRef } from "../../src/engine/image-ref.ts";
import { MIN_MEM_MB } from "../../src/engine/task-spec.ts";
import { executeSchema, plainShape } from "../../src/http/schemas.ts";
import { fakeApp } from "../support/fake-app.ts";
import { fakeGpus, flush } from "../support/fake-executor.ts";

const TOKEN = "fuzz-token";
const MAX_BODY = 2 * 1024 * 1024;
const POSTS = ["/", "/pause", "/unpause", "/update-config", "/stop"] as const;
const GETS = ["/health", "/stats", "/tasks", "/metrics"] as const;

const stringify = (v: unknown): string => {
  try {
    return JSON.stringify(v) ?? "null";
  } catch {
    return "null"; // bigint and friends
  }
};

/** 1 to 100k levels of arrays or objects, alone or where a field is expected, balanced or not. */
const deep: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1, max: 100_000 }), fc.nat(7))
  .map(([d, shape]) => {
    const arr = "[".repeat(d) + "]".repeat(d);
    const obj = '{"a":'.repeat(d) + "1" + "}".repeat(d);
    return [
      arr,
      obj,
      "[".repeat(d),
      `{"id":${arr}}`,
      `{"id":"echo:1","resource":${obj}}`,
      `{"id":"echo:1","resource":{"cpu":${arr}}}`,
      `{"id":"echo:1","input":"x","extra":${obj}}`,
      `{"cpu":${arr},"timeout":${obj}}`,
    ][shape]!;
  });

/** Strings of 1 kB to 1 MB where a field, a key or the whole body is expected. */
const huge: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom(1_000, 100_000, 1_000_000),
    fc.nat(5),
    fc.constantFrom("a", "é", "\\u0000", "/", ":"),
  )
  .map(([n, where, ch]) => {
    const s = ch.repeat(Math.ceil(n / ch.length));
    return [
      `{"id":"${s}"}`,
      `{"id":"echo:1","input":"${s}"}`,
      `{"id":"echo:1","runtime":"${s}"}`,
      `{"${s}":1,"id":"echo:1"}`,
      `{"microVM_runtime":"${s}","${s}":2}`,
      s,
    ][where]!;
  });

const anyValue = fc.oneof(
  fc.anything(),
  fc.double(),
  fc.string({ unit: "binary" }),
  fc.constant(null),
);
/** Mostly a plausible value, sometimes anything at all. */
const maybe = <T>(a: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: anyValue });

/*
 * Valid execute bodies, from the schema's rules: an image reference from Docker's grammar
 * (image-ref.ts), cpu in tenths of a core up to the capacity, whole MB, GPUs the host has,
 * every runtime the host offers, SGX (enabled here), any input, unknown fields, and each of
 * the clients' shapes (plain, the host actor's nested `resource`, the desktop app's).
 */
const CAPACITY = { cpuTenths: 40, memMB: 4096, gpus: 2 };
const alnum = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const pathComponent = fc
  .tuple(
    alnum,
    fc.array(fc.tuple(fc.constantFrom(".", "_", "__", "-", "--"), alnum), { maxLength: 2 }),
  )
  .map(([first, rest]) => first + rest.map(([sep, part]) => sep + part).join(""));
const registry = fc
  .tuple(
    fc.oneof(
      fc.constant("localhost"),
      fc.constant("[::1]"),
      fc
        .array(fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?$/), {
          minLength: 2,
          maxLength: 3,
        })
        .map((parts) => parts.join(".")),
    ),
    fc.option(fc.integer({ min: 1, max: 65_535 }), { nil: undefined }),
  )
  .map(([host, port]) => (port === undefined ? host : `${host}:${port}`));
const imageRef = fc
  .record({
    registry: fc.option(registry, { nil: undefined }),
    path: fc.array(pathComponent, { minLength: 1, maxLength: 3 }),
    tag: fc.option(fc.stringMatching(/^\w[\w.-]{0,20}$/), { nil: undefined }),
    digest: fc.option(
      fc.oneof(
        fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
        fc.stringMatching(/^[0-9a-f]{128}$/).map((h) => `sha512:${h}`),
        // Another algorithm, as the OCI grammar has it: lowercase, its encoded part free-form.
        fc
          .stringMatching(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{1,70}$/)
          .filter((d) => !/^sha(256|512):/.test(d)),
      ),
      { nil: undefined },
    ),
  })
  .map(
    ({ registry, path, tag, digest }) =>
      `${registry ? `${registry}/` : ""}${path.join("/")}${tag ? `:${tag}` : ""}${digest ? `@${digest}` : ""}`,
  );

/** cpu and mem as a client may give them: both, one, neither, or both 0 (the defaults). */
const cpuMem = fc.oneof(
  fc.record(
    {
      cpu: fc.integer({ min: 1, max: CAPACITY.cpuTenths }).map((t) => t / 10),
      mem: fc.integer({ min: MIN_MEM_MB, max: CAPACITY.memMB }),
    },
    { requiredKeys: [] },
  ),
  fc.constantFrom<{ cpu?: number; mem?: number }>({ cpu: 0, mem: 0 }, { cpu: 0 }, { mem: 0 }),
);
/** use_gpu false (any count, ignored) or true with 0 (one GPU) up to the host's GPUs. */
const gpu = fc.oneof(
  fc.record({ use_gpu: fc.constant(false), gpu_count: fc.nat(8) }, { requiredKeys: [] }),
  fc.record(
    { use_gpu: fc.constant(true), gpu_count: fc.integer({ min: 0, max: CAPACITY.gpus }) },
    { requiredKeys: ["use_gpu"] },
  ),
);

interface ValidExecute {
  shape: "plain" | "host actor" | "desktop app";
  body: Record<string, unknown>;
  /** What the task must be started with, and what it must answer. */
  expect: { cpu: number; mem: number; gpus: number; runtime: string; sgx: boolean; msg: string };
}

const validBody: fc.Arbitrary<ValidExecute> = fc
  .record({
    id: imageRef,
    cpuMem,
    gpu,
    runtime: fc.constantFrom(undefined, null, "", "container", "microVM"),
    input: fc.oneof(
      fc.string({ unit: "binary", maxLength: 300 }),
      fc.constantFrom(undefined, null, ""),
    ),
    use_sgx: fc.constantFrom(undefined, null, false, true),
    extra: fc.dictionary(fc.stringMatching(/^x_[a-z_]{0,10}$/), fc.jsonValue({ maxDepth: 2 }), {
      maxKeys: 3,
    }),
    shape: fc.constantFrom<ValidExecute["shape"]>("plain", "host actor", "desktop app"),
  })
  .map(({ id, cpuMem: { cpu, mem }, gpu, runtime, input, use_sgx, extra, shape }) => {
    const resource = defined({ cpu, mem, ...gpu });
    const rest = defined({ runtime, input });
    let body: Record<string, unknown>;
    if (shape === "plain")
      body = {
        ...extra,
        id,
        ...rest,
        ...defined({ use_sgx }),
        ...(Object.keys(resource).length > 0 ? { resource } : {}),
      };
    else if (shape === "host actor")
      body = {
        ...extra,
        id,
        ...rest,
        ...defined({ use_sgx }),
        resource: { resource, name: "task" },
      };
    else {
      body = { ...extra, id, ...rest, resource: defined({ task_cpu: cpu, task_mem: mem }) };
      Object.assign(
        body,
        defined({ useGpu: gpu.use_gpu, gpuCount: gpu.gpu_count, useSgx: use_sgx ?? undefined }),
      );
    }
    const defaults = (cpu ?? 0) === 0 && (mem ?? 0) === 0;
    return {
      shape,
      body,
      expect: {
        cpu: defaults || cpu === undefined ? 1 : cpu,
        mem: defaults || mem === undefined ? 128 : mem,
        gpus: gpu.use_gpu ? Math.max(1, gpu.gpu_count ?? 1) : 0,
        runtime: runtime === "microVM" ? "runsc" : "default",
        sgx: use_sgx === true,
        msg: input ?? "",
      },
    };
  });

/** One rule of the schema broken in a valid plain body; `field` is what the 4xx must name, `code` its error code. */
interface Break {
  field: string;
  code: string;
  apply(body: Record<string, any>): void;
}
const breakAt = (
  field: string,
  code: string,
  values: unknown[],
  extra: Record<string, unknown> = {},
): fc.Arbitrary<Break> =>
  fc.constantFrom(...values).map((value) => ({
    field,
    code,
    apply(body) {
      const [head, leaf] = field.split(".");
      if (leaf === undefined) body[head!] = value;
      else
        body[head!] = {
          ...(typeof body[head!] === "object" ? body[head!] : {}),
          ...extra,
          [leaf]: value,
        };
    },
  }));
const broken = fc.oneof(
  breakAt("id", "INVALID_IMAGE", [
    "Upper/Case",
    "name:",
    ":tag",
    "a//b",
    "-a",
    "a@sha256:short",
    "a b",
    "a".repeat(600),
    `${"a/".repeat(130)}a`,
  ]),
  breakAt("id", "BAD_REQUEST", ["", 5, true, ["echo:1"], { name: "echo" }]),
  breakAt("resource", "BAD_REQUEST", [5, "1 core", true, ["cpu", 1]]),
  // With a valid companion: cpu 0 alone, or with mem 0, means the defaults.
  breakAt("resource.cpu", "BAD_REQUEST", [0, -0.1, 0.25, 0.05, 1.01, "1", true, [1]], { mem: 64 }),
  breakAt("resource.cpu", "EXCEEDS_CAPACITY", [(CAPACITY.cpuTenths + 1) / 10, 1e9], { mem: 64 }),
  breakAt("resource.mem", "BAD_REQUEST", [0, -1, 1, 5, 1.5, "128", false], { cpu: 0.5 }),
  breakAt("resource.mem", "EXCEEDS_CAPACITY", [CAPACITY.memMB + 1, 2 ** 40], { cpu: 0.5 }),
  breakAt("resource.use_gpu", "BAD_REQUEST", ["true", 1, 0, [true]]),
  breakAt("resource.gpu_count", "BAD_REQUEST", [-1, 1.5, "2"], { use_gpu: true }),
  breakAt("resource.gpu_count", "EXCEEDS_CAPACITY", [CAPACITY.gpus + 1], { use_gpu: true }),
  breakAt("runtime", "BAD_REQUEST", ["vm", "kata", "runsc", "MICROVM", " container", 1, true, {}]),
  breakAt("input", "BAD_REQUEST", [1, true, {}, ["x"]]),
  breakAt("use_sgx", "BAD_REQUEST", ["yes", 1, 0, {}]),
);

/** A copy without the undefined values. */
function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Execute requests the fake can serve: one image, resources that fit, unknown fields ignored. */
const validExecute = fc
  .record(
    {
      id: fc.constant("echo:1"),
      resource: fc.record(
        {
          cpu: fc.constantFrom(0, 0.1, 0.5, 1, 2, 4),
          mem: fc.constantFrom(0, 6, 64, 128, 4096),
          use_gpu: fc.constant(false),
          gpu_count: fc.constantFrom(1, 2),
        },
        { requiredKeys: [] },
      ),
      runtime: fc.constantFrom("", "container", null),
      input: fc.string({ unit: "binary", maxLength: 200 }),
      use_sgx: fc.constantFrom(false, null),
      extra: fc.jsonValue(),
    },
    { requiredKeys: ["id"] },
  )
  .map(stringify);

/** Execute requests with one or more fields off. */
const nearlyValid = fc
  .record(
    {
      id: maybe(
        fc.constantFrom(
          "echo:1",
          "echo",
          "echo:1@sha256:" + "a".repeat(64),
          "docker.io/library/echo:1",
          "UPPER:1",
          "no-such:1",
          "",
        ),
      ),
      resource: maybe(
        fc.record(
          {
            cpu: maybe(fc.constantFrom(0, 0.1, 0.25, 0.5, 1, 2, 4, 4.1, -1, 1e308)),
            mem: maybe(fc.constantFrom(0, 1, 64, 128, 4096, 5000, -5, 1.5)),
            use_gpu: maybe(fc.boolean()),
            gpu_count: maybe(fc.constantFrom(0, 1, 2, -1)),
          },
          { requiredKeys: [] },
        ),
      ),
      runtime: maybe(fc.constantFrom("", "container", "microVM", "kata")),
      input: maybe(fc.string({ unit: "binary" })),
      use_sgx: maybe(fc.boolean()),
    },
    { requiredKeys: [] },
  )
  .map(stringify);

/** Bodies that once tricked a parser somewhere. */
const nasty = fc.constantFrom(
  '{"id":"echo:1","__proto__":{"resource":{"cpu":"abc","mem":"x"},"input":{"a":1}}}',
  '{"id":"echo:1","constructor":{"prototype":{"polluted":1}}}',
  '{"id":"echo:1","resource":{"__proto__":{"cpu":-5}}}',
  '{"__proto__":{"cpu":0.1},"timeout":"x"}',
  '{"id":"echo:1","id":5}',
  '{"id":"echo:1"} trailing',
  '\ufeff{"id":"echo:1"}',
  '{"id":"echo:1","input":"\\ud800"}',
  '{"id":"echo:1","input":"\ud800"}',
  '{"id":"echo:1","resource":{"cpu":1e-400,"mem":1e400}}',
  '{"id":"echo:1","resource":{"cpu":0.30000000000000004}}',
  "",
  " ",
  "\u0000",
);

const executeLike: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: validExecute },
  { weight: 3, arbitrary: nearlyValid },
  { weight: 1, arbitrary: nasty },
);

/** Bodies shaped like an update-config request, valid or nearly so. */
const updateLike: fc.Arbitrary<string> = fc
  .record(
    {
      timeout: maybe(fc.constantFrom(0.5, 1, 0, -1)),
      cpu: maybe(fc.constantFrom(0.1, 1, 2, 0.25, 0)),
      mem: maybe(fc.constantFrom(1, 256, 4096, 1.5)),
      has_gpu: maybe(fc.boolean()),
      microVM_runtime: maybe(fc.constantFrom("", "runsc", "kata")),
    },
    { requiredKeys: [] },
  )
  .map(stringify);

const body: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.json() },
  { weight: 3, arbitrary: fc.anything().map(stringify) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 512 }) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: huge },
  { weight: 4, arbitrary: executeLike },
  { weight: 2, arbitrary: updateLike },
);

/** Printable ASCII: what a Request header may hold. */
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,80}$/);
const auth = fc.oneof(
  fc.constant(`Bearer ${TOKEN}`),
  fc.constant(undefined),
  headerValue,
  headerValue.map((v) => `Bearer ${v}`),
);

interface Call {
  method: "GET" | "POST";
  path: string;
  body?: string | Uint8Array;
  headers: Record<string, string>;
}

const call: fc.Arbitrary<Call> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        path: fc.constantFrom(...POSTS),
        body: fc.option(body, { nil: undefined }),
        auth,
        id: fc.option(headerValue, { nil: undefined }),
      })
      .map(({ path, body, auth, id }): Call => ({
        method: "POST",
        path,
        body,
        headers: {
          ...(auth === undefined ? {} : { authorization: auth }),
          ...(id === undefined ? {} : { "x-request-id": id }),
        },
      })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ path: fc.constantFrom(...GETS), query: fc.string(), accept: headerValue })
      .map(({ path, query, accept }): Call => ({
        method: "GET",
        path: `${path}?q=${encodeURIComponent(query)}`,
        headers: { accept },
      })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ path: fc.webPath(), method: fc.constantFrom("GET" as const, "POST" as const) })
      .map(({ path, method }): Call => ({
        method,
        path: path.startsWith("/") ? path : `/${path}`,
        headers: {},
      })),
  },
);

/** The fake executor with every feature a body may ask for: GPUs, a microVM runtime, SGX. */
async function fuzzApp() {
  const parts = await fakeApp({
    adminToken: TOKEN,
    maxBodyBytes: MAX_BODY,
    images: { "echo:1": {} },
    gpus: fakeGpus(CAPACITY.gpus),
    settings: {
      hasGpu: true,
      microVMRuntime: "runsc",
      sgx: { enable: true, device: "/dev/sgx/enclave", aesmdPath: "/var/run/aesmd" },
    },
  });
  const send = async (c: Call) => {
    const res = await parts.app.request(c.path, {
      method: c.method,
      body: c.body as BodyInit | undefined,
      headers: c.headers,
    });
    const text = await res.text();
    return { status: res.status, text, requestId: res.headers.get("x-request-id") };
  };
  /** Every task idle and ready, the ledger exactly what they hold, no container beyond theirs. */
  const noLeak = async () => {
    await flush();
    const tasks = parts.executor.tasks();
    expect(tasks.every((t) => t.state === "ready" && t.in_flight === 0)).toBe(true);
    const used = parts.executor.ledger.used();
    expect(used.cpuTenths).toBe(tasks.reduce((s, t) => s + Math.round(t.reservation!.cpu * 10), 0));
    expect(used.memMB).toBe(tasks.reduce((s, t) => s + t.reservation!.mem, 0));
    expect(parts.executor.ledger.reservations).toBe(tasks.length);
    expect(
      parts.backend
        .containers()
        .map((c) => c.id)
        .sort(),
    ).toEqual(tasks.map((t) => t.container_id).sort());
    expect(parts.executor.queueLength).toBe(0);
  };
  /** Pause removes everything: the ledger returns to zero and no container is left. */
  const drainsToZero = async () => {
    await parts.executor.pause();
    await flush();
    expect(parts.executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    expect(parts.executor.ledger.reservations).toBe(0);
    expect(parts.backend.containers()).toEqual([]);
    parts.executor.unpause();
  };
  return { ...parts, send, noLeak, drainsToZero };
}

/** A status for input that may be bad: a 2xx or a 4xx; 503 only as the answer to an execution while paused. */
function acceptable(r: { status: number; text: string }, pausedBefore: boolean, c: Call): boolean {
  if (r.status >= 200 && r.status < 300) return true;
  if (r.status >= 400 && r.status < 500) return true;
  return r.status === 503 && pausedBefore && c.path === "/" && r.text.includes('"PAUSED"');
}

describe("fuzzing every endpoint", () => {
  it("POST / answers 200 with the task's answer to every valid body generated from the schema's rules", async () => {
    const f = await fuzzApp();
    await fc.assert(
      fc.asyncProperty(validBody, async ({ body, expect: want }) => {
        // The generator keeps to the schema: a body it makes that the schema refuses is its bug.
        expect(
          executeSchema.safeParse(plainShape(body)).success,
          JSON.stringify(body).slice(0, 300),
        ).toBe(true);
        f.backend.addImage(body.id as string);
        const r = await f.send({
          method: "POST",
          path: "/",
          body: JSON.stringify(body),
          headers: {},
        });
        expect(r.status, `${JSON.stringify(body).slice(0, 300)} -> ${r.text.slice(0, 300)}`).toBe(
          200,
        );
        expect(JSON.parse(r.text)).toEqual({ success: true, msg: want.msg });
        const ref = parseImageRef(body.id as string);
        if ("error" in ref)
          throw new Error(
            `Generated an invalid image reference ${JSON.stringify(body.id)}: ${ref.error}`,
          );
        const served = f.executor
          .tasks()
          .filter((t) => t.image === normalizeImageRef(ref) && t.served > 0);
        expect(
          served.map(({ cpu, mem, gpus, runtime, sgx }) => ({
            cpu,
            mem,
            gpus: gpus.length,
            runtime,
            sgx,
          })),
        ).toContainEqual({
          cpu: want.cpu,
          mem: want.mem,
          gpus: want.gpus,
          runtime: want.runtime,
          sgx: want.sgx,
        });
        await f.noLeak();
      }),
      { numRuns: 200 },
    );
    await f.drainsToZero();
  });

  it("POST / answers 4xx naming the field to every valid body with one rule broken", async () => {
    const f = await fuzzApp();
    const plainBody = validBody.filter(({ shape }) => shape === "plain");
    await fc.assert(
      fc.asyncProperty(plainBody, broken, async (valid, b) => {
        const body = structuredClone(valid.body); // fast-check replays the value while shrinking
        f.backend.addImage(body.id as string);
        b.apply(body);
        const r = await f.send({
          method: "POST",
          path: "/",
          body: JSON.stringify(body),
          headers: {},
        });
        expect(
          r.status >= 400 && r.status < 500,
          `${b.field}: ${JSON.stringify(body).slice(0, 300)} -> ${r.status} ${r.text.slice(0, 300)}`,
        ).toBe(true);
        const answer = JSON.parse(r.text);
        expect(answer).toMatchObject({ success: false, error: b.code });
        expect(answer.msg).toContain(`"${b.field}`);
        // A value from the client comes back clipped: never more than 80 characters of it.
        expect(answer.msg).not.toMatch(/[^"]{81}/);
        if (b.code === "EXCEEDS_CAPACITY")
          expect(answer.msg).toMatch(
            /at most 4 on this host|at most 4096 MB on this host|this host has 2$/,
          );
        if (b.code === "INVALID_IMAGE")
          expect(answer.msg).toMatch(
            /^Field "id" (is not a valid image reference|has a repository name longer than 255 characters|is longer than 512 characters|has a sha(256|512) digest that is not)/,
          );
        await f.noLeak();
      }),
      { numRuns: 300 },
    );
    await f.drainsToZero();
  });

  it("POST / answers any body with a 2xx or a 4xx, never a 5xx or a stack, and leaks no reservation", async () => {
    const f = await fuzzApp();
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const r = await f.send({ method: "POST", path: "/", body: b, headers: {} });
        expect(
          r.status === 200 || (r.status >= 400 && r.status < 500),
          `${r.status} ${r.text.slice(0, 300)}`,
        ).toBe(true);
        if (r.status !== 413)
          expect(JSON.parse(r.text)).toHaveProperty("success", r.status === 200);
        expect(r.text).not.toMatch(/\n\s+at /);
        await f.noLeak();
      }),
      { numRuns: 200 },
    );
    await f.drainsToZero();
  });

  it("random calls to every endpoint, with or without the token, never get a 5xx or leak", async () => {
    const f = await fuzzApp();
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 6 }), async (calls) => {
        for (const c of calls) {
          const pausedBefore = f.executor.paused;
          const r = await f.send(c);
          expect(
            acceptable(r, pausedBefore, c),
            `${c.method} ${c.path}: ${r.status} ${r.text.slice(0, 300)}`,
          ).toBe(true);
          expect(r.requestId).toBeTruthy();
          const admin =
            c.method === "POST" && c.path !== "/" && (POSTS as readonly string[]).includes(c.path);
          if (admin && c.headers.authorization !== `Bearer ${TOKEN}`) expect(r.status).toBe(401);
        }
        f.executor.unpause();
        await f.noLeak();
      }),
      { numRuns: 150 },
    );
    await f.drainsToZero();
  });

  it("admin endpoints with the token: 2xx or 4xx for any body, update-config running or paused", async () => {
    const f = await fuzzApp();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("/pause", "/unpause", "/update-config", "/stop"),
        fc.option(body, { nil: undefined }),
        async (path, b) => {
          const r = await f.send({
            method: "POST",
            path,
            body: b,
            headers: { authorization: `Bearer ${TOKEN}` },
          });
          expect(r.status < 500, `${path}: ${r.status} ${r.text.slice(0, 300)}`).toBe(true);
          expect(r.text.length).toBeLessThan(2_000); // no huge key or value echoed back
          if (path !== "/update-config") expect(r.status).toBe(200);
        },
      ),
      { numRuns: 150 },
    );
    f.executor.unpause();
    await f.noLeak();
    await f.drainsToZero();
  });

  it("GET endpoints answer 200 whatever the query and headers", async () => {
    const f = await fuzzApp();
    await f.send({ method: "POST", path: "/", body: '{"id":"echo:1"}', headers: {} });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...GETS),
        fc.string({ unit: "binary" }),
        headerValue,
        async (path, q, h) => {
          const r = await f.send({
            method: "GET",
            path: `${path}?${encodeURIComponent(q)}=${encodeURIComponent(q)}`,
            headers: { accept: h, "x-request-id": h },
          });
          expect(r.status).toBe(200);
        },
      ),
      { numRuns: 100 },
    );
    await f.noLeak();
  });
});
