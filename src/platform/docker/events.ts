/** Docker's container event stream → the engine's ContainerEvent. */
import type { ContainerEvent } from "./backend.ts";
import type { Filters } from "./docker-api.ts";
import { jsonLines } from "./json-lines.ts";
import type { ByteSource } from "./log-demux.ts";

interface EventJson {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/** Attributes Docker adds to a container's labels in an event. */
const NOT_LABELS = new Set(["image", "name", "exitCode", "signal", "execDuration", "container"]);

/** `{"label": ["k=v", …]}` for the list and events filters. */
export function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

export function eventFilters(labels: Record<string, string>): Filters {
  return { type: ["container"], label: labelFilters(labels) };
}

/**
 * Normalises one event. `health_status: healthy` and `exec_start: sh` become
 * `health_status` and `exec_start`; `die` carries its exit code.
 * Non-container events give undefined.
 */
export function toContainerEvent(value: unknown): ContainerEvent | undefined {
  const e = value as EventJson;
  if (typeof e !== "object" || e === null) return undefined;
  if (e.Type !== undefined && e.Type !== "container") return undefined;
  const rawAction = e.Action ?? e.status;
  const id = e.Actor?.ID ?? e.id;
  if (rawAction === undefined || id === undefined) return undefined;
  const action = rawAction.split(":")[0]!.trim();
  const attributes = e.Actor?.Attributes ?? {};
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) if (!NOT_LABELS.has(k)) labels[k] = v;
  const event: ContainerEvent = { id, action, labels };
  const exitCode = attributes.exitCode === undefined ? NaN : Number(attributes.exitCode);
  if (Number.isInteger(exitCode)) event.exitCode = exitCode;
  return event;
}

/** Reads the stream to its end, calling `onEvent` for every container event. */
export async function readEvents(
  source: ByteSource,
  onEvent: (event: ContainerEvent) => void,
): Promise<void> {
  for await (const value of jsonLines(source)) {
    const event = toContainerEvent(value);
    if (event !== undefined) onEvent(event);
  }
}
