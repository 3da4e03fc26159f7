/**
 * What each request used, on the real engine and this host's cgroups, against the task's own
 * figures: the fixture's `use:<ms>:<MB>` touches that much memory, burns that much CPU and answers
 * the CPU time its process counted. The header, /requests and /usage must agree with it.
 */
import { describe, expect, it } from "vitest";
import { docker } from "../support/docker-env.ts";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor } from "../support/harness.ts";

const version = docker(["info", "--format", "{{.CgroupVersion}}"]).trim();
const resource = { cpu: 1, mem: 256 };

/** An RFC 8941 dictionary of numbers, booleans and bare keys, as the executor writes it. */
function dict(header: string | null): Record<string, number | boolean | string> {
  const out: Record<string, number | boolean | string> = {};
  for (const member of (header ?? "").split(/,\s*(?![^()]*\))/)) {
    const [k, v] = member.split("=");
    if (v === undefined) out[k!] = true;
    else out[k!] = v === "?1" ? true : v === "?0" ? false : /^-?\d/.test(v) ? Number(v) : v;
  }
  return out;
}

/** The fixture's own count: "used:cpu_ms=<ms>:mb=<MB>". */
const own = (msg: string) => Number(/cpu_ms=([\d.]+)/.exec(msg)![1]);

describe(`usage per request on this host (cgroup v${version})`, () => {
  it("the header, /requests and /usage agree with the task's own CPU time and memory; a second request reports only its own", async () => {
    const h = await startExecutor({});
    try {
      const first = await h.execute({ id: ECHO_IMAGE, resource, input: "use:200:64" });
      expect(first.status).toBe(200);
      const u1 = dict(first.headers.get("meca-usage"));
      const cpu1 = own(first.body.msg);
      // The container's CPU is the fixture's own plus what serving the request took: a little more.
      expect(u1["cpu-ms"]).toBeGreaterThanOrEqual(cpu1);
      expect(u1["cpu-ms"]).toBeLessThan(cpu1 + 50);
      expect(u1["mem-peak-mb"]).toBeGreaterThanOrEqual(64);
      expect(u1["mem-peak-mb"]).toBeLessThan(64 + 32);
      expect(u1).toMatchObject({ exact: true, "in-bytes": 10, "gpu-ms": 0 });
      expect(u1["out-bytes"]).toBe(Buffer.byteLength(first.body.msg));
      expect(u1["start-ms"]).toBeGreaterThan(0); // it started the task
      expect(u1["wall-ms"]).toBeGreaterThanOrEqual(cpu1 - 1);

      const second = await h.execute({ id: ECHO_IMAGE, resource, input: "use:50:8" });
      const u2 = dict(second.headers.get("meca-usage"));
      const cpu2 = own(second.body.msg);
      expect(u2["cpu-ms"]).toBeGreaterThanOrEqual(cpu2);
      expect(u2["cpu-ms"]).toBeLessThan(cpu2 + 50);
      expect(u2["start-ms"]).toBe(0);
      if (version === "1") {
        // cgroup v1 resets the peak for a request alone in its container: 8 MB, not the first's 64.
        expect(u2["mem-peak-mb"]).toBeLessThan(64);
        expect(u2["mem-peak-since-start"]).toBeUndefined();
      } else expect(u2["mem-peak-since-start"]).toBe(true);

      const recent = (await h.call("GET", "/requests")).body.requests as {
        usage: Record<string, number | boolean>;
      }[];
      expect(recent.at(-2)!.usage).toMatchObject({ cpu_ms: u1["cpu-ms"], exact: true });
      expect(recent.at(-1)!.usage).toMatchObject({ cpu_ms: u2["cpu-ms"], start_ms: 0 });
      const keys = (await h.call("GET", "/usage")).body.keys as Record<string, any>[];
      const row = keys.find((k) => k.image === ECHO_IMAGE)!;
      expect(row).toMatchObject({ requests: 2, cold_starts: 1, resource: { cpu: 1, mem: 256 } });
      expect(row.cpu_ms.total).toBeCloseTo((u1["cpu-ms"] as number) + (u2["cpu-ms"] as number), 2);
      const metrics = (await h.call("GET", "/metrics")).text;
      const cpuSeconds = Number(
        new RegExp(`^meca_task_cpu_seconds_total\\{image="${ECHO_IMAGE}"\\} (\\S+)$`, "m").exec(
          metrics,
        )![1],
      );
      expect(cpuSeconds).toBeCloseTo(row.cpu_ms.total / 1000, 5);
      expect(metrics).toMatch(
        new RegExp(`^meca_task_memory_peak_megabytes_count\\{image="${ECHO_IMAGE}"\\} 2$`, "m"),
      );
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });

  it("requests that overlap in one container are marked not exact", async () => {
    const h = await startExecutor({});
    try {
      expect((await h.execute({ id: ECHO_IMAGE, resource, input: "x" })).status).toBe(200);
      // The fixture serves one request at a time: the second waits in its container for the first.
      const [a, b] = await Promise.all([
        h.execute({ id: ECHO_IMAGE, resource, input: "use:300:1" }),
        h.execute({ id: ECHO_IMAGE, resource, input: "use:300:1" }),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(dict(a.headers.get("meca-usage")).exact).toBe(false);
      expect(dict(b.headers.get("meca-usage")).exact).toBe(false);
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });
});
