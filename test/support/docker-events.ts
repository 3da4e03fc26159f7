/**
 * What the engine recorded, read back with `docker events --since … --until …`:
 * a closed window, so nothing depends on when a stream connected and every
 * event in the window is there.
 */
import { docker } from "./docker-env.ts";

export interface RecordedEvent {
  id: string;
  action: string;
  /** Nanoseconds since the epoch, as the engine stamped it. */
  timeNano: bigint;
}

/** Now, in seconds with a fraction, as `--since`/`--until` take it (the engine runs on this machine). */
export function engineNow(): string {
  const ms = Date.now();
  return `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, "0")}`;
}

/** Container events between `since` and `until` (default: now) for containers with every label given. */
export function containerEvents(o: {
  since: string;
  until?: string;
  labels: Record<string, string>;
  actions?: string[];
}): RecordedEvent[] {
  const filters = [
    ...["--filter", "type=container"],
    ...Object.entries(o.labels).flatMap(([k, v]) => ["--filter", `label=${k}=${v}`]),
    ...(o.actions ?? []).flatMap((a) => ["--filter", `event=${a}`]),
  ];
  const out = docker([
    "events",
    "--since",
    o.since,
    "--until",
    o.until ?? engineNow(),
    ...filters,
    "--format",
    "{{json .}}",
  ]);
  return out
    .split("\n")
    .filter(Boolean)
    .map(
      (line) =>
        JSON.parse(line) as {
          id?: string;
          Actor?: { ID?: string };
          Action?: string;
          status?: string;
          timeNano?: number | string;
        },
    )
    .map((e) => ({
      id: e.Actor?.ID ?? e.id ?? "",
      action: (e.Action ?? e.status ?? "").split(":")[0]!,
      timeNano: BigInt(e.timeNano ?? 0),
    }));
}
