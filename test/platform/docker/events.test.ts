import { describe, expect, it } from "vitest";
import type { ContainerEvent } from "../../../src/platform/docker/backend.ts";
import { eventFilters, readEvents, toContainerEvent } from "../../../src/platform/docker/events.ts";

const enc = new TextEncoder();

function bytes(...parts: string[]): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (const p of parts) yield enc.encode(p);
  })();
}

const die = {
  status: "die",
  id: "abc",
  from: "meca-test/echo:1",
  Type: "container",
  Action: "die",
  Actor: {
    ID: "abc",
    Attributes: { exitCode: "137", image: "meca-test/echo:1", name: "t1", "meca.executor": "1" },
  },
  scope: "local",
  time: 1700000000,
};

describe("toContainerEvent()", () => {
  it("takes the id, action, labels and exit code of a die event", () => {
    expect(toContainerEvent(die)).toEqual({
      id: "abc",
      action: "die",
      labels: { "meca.executor": "1" },
      exitCode: 137,
    });
  });

  it("normalises health_status and exec actions to their first word", () => {
    const health = {
      ...die,
      Action: "health_status: unhealthy",
      Actor: { ID: "abc", Attributes: {} },
    };
    expect(toContainerEvent(health)).toEqual({ id: "abc", action: "health_status", labels: {} });
    expect(toContainerEvent({ ...health, Action: "exec_start: sh -c true" })?.action).toBe(
      "exec_start",
    );
  });

  it("leaves out the exit code when there is none, and ignores other event types", () => {
    expect(
      toContainerEvent({ ...die, Action: "oom", Actor: { ID: "abc", Attributes: { name: "t1" } } }),
    ).toEqual({
      id: "abc",
      action: "oom",
      labels: {},
    });
    expect(
      toContainerEvent({ Type: "network", Action: "connect", Actor: { ID: "n" } }),
    ).toBeUndefined();
    expect(toContainerEvent("nonsense")).toBeUndefined();
  });
});

describe("readEvents()", () => {
  it("reads JSON lines split anywhere, skipping what is not JSON", async () => {
    const start = JSON.stringify({ ...die, Action: "start", Actor: { ID: "abc", Attributes: {} } });
    const text = `${start}\ngarbage\n${JSON.stringify(die)}\n`;
    const events: ContainerEvent[] = [];
    await readEvents(bytes(text.slice(0, 17), text.slice(17, 200), text.slice(200)), (e) =>
      events.push(e),
    );
    expect(events.map((e) => e.action)).toEqual(["start", "die"]);
    expect(events[1]!.exitCode).toBe(137);
  });
});

describe("eventFilters()", () => {
  it("asks for container events carrying every label", () => {
    expect(eventFilters({ a: "1", b: "x=y" })).toEqual({
      type: ["container"],
      label: ["a=1", "b=x=y"],
    });
  });
});
