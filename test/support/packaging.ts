/**
 * Helpers for the tests of the packaged executor (the single executable and
 * the container image), which talk to it over real HTTP on 127.0.0.1.
 */
import { LABELS } from "../../src/platform/docker/labels.ts";
import { docker } from "./docker-env.ts";

/** Polls `GET /health` until it answers `{"status":"ok"}`; fails with `why()` (a log tail) after `timeoutMs`. */
export async function waitHealthy(
  base: string,
  opts: { timeoutMs?: number; why?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok && ((await res.json()) as { status?: string }).status === "ok") return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${base}/health did not answer in time${opts.why ? `:\n${opts.why()}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POSTs a JSON body (or none) and returns the status and the parsed answer. */
export async function post(
  url: string,
  body?: unknown,
): Promise<{ status: number; body: { success: boolean; msg: string; error?: string } }> {
  const res = await fetch(url, {
    method: "POST",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json()) as { success: boolean; msg: string; error?: string },
  };
}

/** A config file's text: JSON is YAML, so values keep their types. */
export function configYaml(config: Record<string, unknown>): string {
  return `${Object.entries(config)
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join("\n")}\n`;
}

/** Names of the containers that the executor instance `instance` has on the main engine. */
export function taskContainers(instance: string): string[] {
  return docker([
    "ps",
    "-a",
    "--filter",
    `label=${LABELS.instance}=${instance}`,
    "--format",
    "{{.Names}}",
  ])
    .split("\n")
    .filter(Boolean);
}

/** Resolves with the exit code once `container` has stopped. */
export function waitExit(container: string): number {
  return Number(docker(["wait", container]).trim());
}
