import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/platform/docker/labels.ts";
import {
  CRASH_IMAGE,
  ECHO_IMAGE,
  HOSTILE,
  NEVER_READY_IMAGE,
  PULLED_IMAGE,
  READY_LATE_IMAGE,
  REGISTRY,
  taskBody,
} from "../support/fixtures.ts";
import { docker } from "../support/docker-env.ts";
import { containerEvents, engineNow } from "../support/docker-events.ts";
import { startExecutor, until, type Harness } from "../support/harness.ts";

const small = { cpu: 0.1, mem: 32 };

describe("POST / against the real engine", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startExecutor({ ready_timeout: 2 });
  });
  afterAll(async () => {
    expect(await h.close()).toEqual([]);
  });

  it("forwards the input byte for byte and wraps the answer", async () => {
    const input = 'héllo\n{"json":true}\t\u0000 ✓ ' + "x".repeat(100_000);
    const r = await h.execute({ id: ECHO_IMAGE, resource: small, input, extra_field: "ignored" });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ success: true, msg: input });
  });

  it("keeps one warm container per key and reuses it", async () => {
    const a = await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami });
    const b = await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.whoami });
    expect(a.body.msg).toBe(b.body.msg);
    const other = await h.execute({
      id: ECHO_IMAGE,
      resource: { cpu: 0.2, mem: 32 },
      input: taskBody.whoami,
    });
    expect(other.body.msg).not.toBe(a.body.msg);
    const names = (await h.containers()).map((c) => c.name);
    expect(new Set(names.map((n) => n.split("-").at(-2))).size).toBe(names.length);
  });

  it("starts exactly one container for many first requests at once", async () => {
    const intent = { id: ECHO_IMAGE, resource: { cpu: 0.3, mem: 48 } };
    const since = engineNow();
    const results = await Promise.all(
      Array.from({ length: 12 }, () => h.execute({ ...intent, input: taskBody.whoami })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(new Set(results.map((r) => r.body.msg)).size).toBe(1);
    // The engine's own record: one container created for the burst, whatever the executor logged.
    const created = containerEvents({
      since,
      labels: { [LABELS.instance]: h.instance },
      actions: ["create"],
    });
    expect(created).toHaveLength(1);
    expect(h.executor.tasks().filter((t) => t.cpu === 0.3)).toMatchObject([
      { container_id: created[0]!.id },
    ]);
  });

  it("creates the container with the limits, labels and least privileges", async () => {
    await h.execute({ id: ECHO_IMAGE, resource: { cpu: 0.5, mem: 64 }, input: "x" });
    const task = h.executor.tasks().find((t) => t.cpu === 0.5)!;
    const inspect = JSON.parse(docker(["inspect", task.container_id!]))[0];
    expect(inspect.HostConfig.NanoCpus).toBe(500_000_000);
    expect(inspect.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(inspect.HostConfig.MemorySwap).toBe(64 * 1024 * 1024);
    expect(inspect.HostConfig.PidsLimit).toBeGreaterThan(0);
    expect(inspect.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
    expect(inspect.HostConfig.Privileged).toBe(false);
    expect(inspect.HostConfig.CapDrop).toEqual(["NET_RAW"]);
    // On a network of its own, publishing nothing: the executor calls it at its address there.
    expect(inspect.HostConfig.PortBindings ?? {}).toEqual({});
    expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([task.network.name]);
    expect(task.network).toMatchObject({
      isolated: true,
      subnet: expect.stringMatching(/^10\.201\.\d+\.\d+\/28$/),
    });
    expect(inspect.Config.Labels[LABELS.managed]).toBe("1");
    expect(inspect.Config.Labels[LABELS.instance]).toBe(h.instance);
  });

  it("retries connection refusals after the mark (a task that listens late)", async () => {
    const r = await h.execute({ id: READY_LATE_IMAGE, resource: small, input: "late but fine" });
    expect(r).toMatchObject({ status: 200, body: { success: true, msg: "late but fine" } });
  });

  it("fails at once with the exit code and last log lines when a task crashes before ready", async () => {
    const r = await h.execute({ id: CRASH_IMAGE, resource: small });
    expect(r.status).toBe(502);
    expect(r.body.error).toBe("TASK_EXITED");
    expect(r.body.msg).toContain("exited with code 3");
    expect(r.body.msg).toContain("fatal: cannot open model file");
    await until(
      async () => (await h.containers()).every((c) => c.labels[LABELS.image] !== CRASH_IMAGE),
      "crashed container removed",
    );
  });

  it("fails after the ready timeout when a task never prints the mark, leaving nothing behind", async () => {
    const before = h.executor.ledger.used();
    const r = await h.execute({ id: NEVER_READY_IMAGE, resource: small });
    expect(r.status).toBe(502);
    expect(r.body.error).toBe("TASK_NOT_READY");
    expect(r.body.msg).toMatch(/did not print "meca-init-done" within the ready timeout of 2 s/);
    expect(h.executor.ledger.used()).toEqual(before);
    await until(
      async () => (await h.containers()).every((c) => c.labels[LABELS.image] !== NEVER_READY_IMAGE),
      "never-ready container removed",
    );
  });

  it("reports a task's error status and body as 502", async () => {
    const r = await h.execute({ id: ECHO_IMAGE, resource: small, input: taskBody.status(500) });
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ success: false, error: "TASK_FAILED" });
    expect(r.body.msg).toContain("answered 500: failed with 500");
  });

  it("refuses an image that does not exist and cannot be pulled, returning the reservation", async () => {
    const before = h.executor.ledger.used();
    const r = await h.execute({ id: `${REGISTRY}/meca-test/does-not-exist:1`, resource: small });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("IMAGE_NOT_FOUND");
    expect(r.body.msg).toContain("does-not-exist");
    expect(r.body.msg).not.toMatch(/\n\s+at /);
    expect(h.executor.ledger.used()).toEqual(before);
  });

  it("pulls a missing image once for every request waiting on it", async () => {
    docker(["rmi", "-f", PULLED_IMAGE]);
    const results = await Promise.all(
      [0.1, 0.2, 0.3].map((cpu) =>
        h.execute({ id: PULLED_IMAGE, resource: { cpu, mem: 32 }, input: "pulled" }),
      ),
    );
    expect(results.map((r) => r.body.msg)).toEqual(["pulled", "pulled", "pulled"]);
    expect(
      h.logger.records.filter((l) => l.msg === "Pulling image" && l.fields.image === PULLED_IMAGE),
    ).toHaveLength(1);
    expect(
      h.logger.records.some((l) => l.msg === "Pull progress" && l.fields.image === PULLED_IMAGE),
    ).toBe(true);
  });

  it("turns bytes that are not UTF-8 into U+FFFD, in the input the task gets and in the answer the client gets", async () => {
    // A raw 0xff inside the JSON string of `input`: the echo task gets EF BF BD in its place.
    const head = new TextEncoder().encode(
      `{"id":"${ECHO_IMAGE}","resource":{"cpu":0.1,"mem":32},"input":"a`,
    );
    const tail = new TextEncoder().encode(`b"}`);
    const raw = new Uint8Array([...head, 0xff, ...tail]);
    const echoed = await h.execute(undefined, {
      body: raw,
      headers: { "content-type": "application/json" },
    });
    expect(echoed.body).toEqual({ success: true, msg: "a\ufffdb" });
    // The task answers 41 ff 42 c3 28 ("A", a lone 0xff, "B", a broken two-byte sequence).
    const answered = await h.execute({
      id: ECHO_IMAGE,
      resource: small,
      input: taskBody.bytes("41ff42c328"),
    });
    expect(answered.body).toEqual({ success: true, msg: "A\ufffdB\ufffd(" });
  });

  it("never gives a client a task's address or container id; the log keeps them", async () => {
    const r = await h.execute({ id: HOSTILE.invalidHttp, resource: small, input: "x" });
    expect(r.status).toBe(502);
    expect(r.body.msg).not.toMatch(/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b|http:\/\/|:8080/);
    const ids = (await h.containers()).map((c) => c.id);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) expect(r.body.msg).not.toContain(id.slice(0, 12));
    const logged = h.logger.records.filter(
      (l) => l.fields.code === r.body.error && typeof l.fields.where === "string",
    );
    expect(logged.map((l) => l.fields.where)).toContainEqual(
      expect.stringMatching(/^http:\/\/.+:8080$/),
    );
  });

  it("serves a warm task while another key's cold start is still waiting for its mark", async () => {
    await h.execute({ id: ECHO_IMAGE, resource: small, input: "warm" });
    let coldDone = false;
    const cold = h
      .execute({ id: NEVER_READY_IMAGE, resource: { cpu: 0.2, mem: 32 } })
      .finally(() => (coldDone = true));
    await until(
      () =>
        h.executor.tasks().some((t) => t.image === NEVER_READY_IMAGE && t.container_id !== null),
      "cold start under way",
    );
    const warm = await h.execute({ id: ECHO_IMAGE, resource: small, input: "still warm" });
    expect(warm.body.msg).toBe("still warm");
    expect(coldDone).toBe(false);
    expect((await cold).status).toBe(502);
  });
});

describe("bad input never leaks", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startExecutor({ cpu: 1, mem: 512 });
  });
  afterAll(async () => {
    await h.close();
  });

  it.each([
    ["malformed JSON", "{not json", "INVALID_JSON", undefined],
    ["a missing id", { input: "x" }, "BAD_REQUEST", '"id"'],
    ["a malformed id", { id: "Not An Image!" }, "INVALID_IMAGE", '"id"'],
    [
      "cpu 0 with mem",
      { id: ECHO_IMAGE, resource: { cpu: 0, mem: 64 } },
      "BAD_REQUEST",
      '"resource.cpu"',
    ],
    ["negative cpu", { id: ECHO_IMAGE, resource: { cpu: -1 } }, "BAD_REQUEST", '"resource.cpu"'],
    [
      "cpu with two decimals",
      { id: ECHO_IMAGE, resource: { cpu: 0.25 } },
      "BAD_REQUEST",
      '"resource.cpu"',
    ],
    [
      "mem not an integer",
      { id: ECHO_IMAGE, resource: { mem: 12.5 } },
      "BAD_REQUEST",
      '"resource.mem"',
    ],
    [
      "mem as a string",
      { id: ECHO_IMAGE, resource: { mem: "128" } },
      "BAD_REQUEST",
      '"resource.mem"',
    ],
    [
      "mem below the engine's minimum",
      { id: ECHO_IMAGE, resource: { cpu: 0.1, mem: 5 } },
      "BAD_REQUEST",
      '"resource.mem"',
    ],
    ["an unknown runtime", { id: ECHO_IMAGE, runtime: "vm" }, "BAD_REQUEST", '"runtime"'],
    [
      "more cores than the capacity",
      { id: ECHO_IMAGE, resource: { cpu: 2 } },
      "EXCEEDS_CAPACITY",
      '"resource.cpu"',
    ],
    [
      "more memory than the capacity",
      { id: ECHO_IMAGE, resource: { cpu: 1, mem: 4096 } },
      "EXCEEDS_CAPACITY",
      '"resource.mem"',
    ],
    [
      "GPUs on a host without",
      { id: ECHO_IMAGE, resource: { use_gpu: true, gpu_count: 1 } },
      "EXCEEDS_CAPACITY",
      "gpu_count",
    ],
  ])("answers 400 to %s, naming the field", async (_name, body, code, field) => {
    const r = await h.execute(body);
    expect(r.status).toBe(400);
    expect(r.body.success).toBe(false);
    expect(r.body.error).toBe(code);
    if (field) expect(r.body.msg).toContain(field);
    expect(h.executor.ledger.used()).toEqual({ cpuTenths: 0, memMB: 0, gpus: [] });
    expect(await h.containers()).toEqual([]);
  });
});

describe("min_free_host_mem_mb on the real host", () => {
  it("a bound above the host's available memory refuses every start with HOST_MEMORY_LOW and both figures, and creates nothing", async () => {
    const h = await startExecutor({ min_free_host_mem_mb: 99_999_999 });
    try {
      const r = await h.execute({ id: ECHO_IMAGE, resource: small });
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ success: false, error: "HOST_MEMORY_LOW" });
      expect(r.body.msg).toMatch(
        /^Cannot start a task: the host has \d+ MB of memory available, less than min_free_host_mem_mb \(99999999 MB\)$/,
      );
      expect(await h.containers()).toEqual([]);
      expect(h.executor.ledger.used().cpuTenths).toBe(0);
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });
});
