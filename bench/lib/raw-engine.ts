/**
 * The benchmark's own Docker Engine API client: undici over the unix socket,
 * no executor code on the path. It is the "raw" side of the cold-start
 * comparison and finds a warm task's published port for the direct side.
 */
import { Pool } from "undici";

export const API = "/v1.41";
export const TASK_PORT = "8080/tcp";
/** Every container the benchmark creates itself carries this label. */
export const BENCH_LABEL = "meca.bench";

export class RawEngine {
  #pool: Pool;

  constructor(socketPath = dockerSocket()) {
    this.#pool = new Pool("http://localhost", {
      socketPath,
      connections: 16,
      keepAliveTimeout: 30_000,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  async call(
    method: "GET" | "POST" | "DELETE",
    path: string,
    body?: unknown,
  ): Promise<{ status: number; text: string }> {
    const res = await this.#pool.request({
      method,
      path: API + path,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? undefined : { "content-type": "application/json" },
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  async json<T>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T> {
    const r = await this.call(method, path, body);
    if (r.status >= 300)
      throw new Error(`Docker ${method} ${path} answered ${r.status}: ${r.text.trim()}`);
    return (r.text ? JSON.parse(r.text) : undefined) as T;
  }

  async create(name: string, body: Record<string, unknown>): Promise<string> {
    return (
      await this.json<{ Id: string }>(
        "POST",
        `/containers/create?name=${encodeURIComponent(name)}`,
        body,
      )
    ).Id;
  }

  async start(id: string): Promise<void> {
    const r = await this.call("POST", `/containers/${id}/start`);
    if (r.status !== 204 && r.status !== 304)
      throw new Error(`Cannot start container "${id}": ${r.status} ${r.text.trim()}`);
  }

  /** Follows the log stream (demultiplexed) until `mark` is a whole stdout line. */
  async waitForMark(id: string, mark: string, timeoutMs = 30_000): Promise<void> {
    const ac = new AbortController();
    const timer = setTimeout(
      () => ac.abort(new Error(`No "${mark}" from container "${id}" within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const res = await this.#pool.request({
        method: "GET",
        path: `${API}/containers/${id}/logs?stdout=1&stderr=1&follow=1&since=0`,
        signal: ac.signal,
      });
      if (res.statusCode !== 200)
        throw new Error(
          `Cannot follow logs of "${id}": ${res.statusCode} ${await res.body.text()}`,
        );
      const demux = new LogDemux();
      for await (const chunk of res.body) {
        if (demux.push(chunk as Buffer).includes(mark)) {
          res.body.destroy();
          return;
        }
      }
      throw new Error(`Log stream of "${id}" ended before "${mark}"`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Where a task answers: its published 127.0.0.1 port, or else its address on its (own) network,
   * the fastest direct path there is to it.
   */
  async taskEndpoint(id: string): Promise<string> {
    const j = await this.json<{
      NetworkSettings?: {
        Ports?: Record<string, { HostPort: string }[] | null>;
        Networks?: Record<string, { IPAddress?: string }>;
      };
    }>("GET", `/containers/${id}/json`);
    const port = j.NetworkSettings?.Ports?.[TASK_PORT]?.find((b) => b.HostPort !== "")?.HostPort;
    if (port) return `http://127.0.0.1:${port}`;
    const ip = Object.values(j.NetworkSettings?.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress;
    if (!ip) throw new Error(`Container "${id}" neither publishes ${TASK_PORT} nor has an address`);
    return `http://${ip}:8080`;
  }

  /** An internal bridge network of the benchmark's own, as the executor makes one per task. */
  async createNetwork(name: string, subnet: string): Promise<string> {
    const body = {
      Name: name,
      Driver: "bridge",
      CheckDuplicate: true,
      Internal: true,
      Labels: { [BENCH_LABEL]: "1" },
      IPAM: { Driver: "default", Config: [{ Subnet: subnet }] },
    };
    return (await this.json<{ Id: string }>("POST", "/networks/create", body)).Id;
  }

  async removeNetwork(id: string): Promise<void> {
    const r = await this.call("DELETE", `/networks/${id}`);
    if (r.status >= 300 && r.status !== 404)
      throw new Error(`Cannot remove network "${id}": ${r.status} ${r.text.trim()}`);
  }

  /** Ids of every network carrying `key=value`. */
  async networksByLabel(key: string, value: string): Promise<string[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${key}=${value}`] }));
    return (await this.json<{ Id: string }[]>("GET", `/networks?filters=${filters}`)).map(
      (n) => n.Id,
    );
  }

  async remove(id: string): Promise<void> {
    const r = await this.call("DELETE", `/containers/${id}?force=1&v=1`);
    if (r.status >= 300 && r.status !== 404)
      throw new Error(`Cannot remove container "${id}": ${r.status} ${r.text.trim()}`);
  }

  /** Ids of every container (running or not) carrying `key=value`. */
  async listByLabel(key: string, value: string): Promise<string[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${key}=${value}`] }));
    return (
      await this.json<{ Id: string }[]>("GET", `/containers/json?all=1&filters=${filters}`)
    ).map((c) => c.Id);
  }

  async version(): Promise<{ Version: string; ApiVersion: string; KernelVersion?: string }> {
    return this.json("GET", "/version");
  }

  close(): Promise<void> {
    return this.#pool.destroy();
  }
}

/** Docker's multiplexed log stream (8-byte frame headers) → whole stdout lines. */
export class LogDemux {
  #buf: Buffer = Buffer.alloc(0);
  #partial: Record<number, string> = {};

  /** Feeds bytes; returns the stdout lines completed by them. */
  push(chunk: Buffer): string[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const lines: string[] = [];
    while (this.#buf.length >= 8) {
      const size = this.#buf.readUInt32BE(4);
      if (this.#buf.length < 8 + size) break;
      const stream = this.#buf[0]!;
      const text = (this.#partial[stream] ?? "") + this.#buf.subarray(8, 8 + size).toString("utf8");
      this.#buf = this.#buf.subarray(8 + size);
      const parts = text.split("\n");
      this.#partial[stream] = parts.pop()!;
      if (stream === 1) lines.push(...parts.map((l) => l.replace(/\r$/, "")));
    }
    return lines;
  }
}

export function dockerSocket(env: Record<string, string | undefined> = process.env): string {
  const host = env.DOCKER_HOST;
  if (!host) return "/var/run/docker.sock";
  if (host.startsWith("unix://")) return host.slice("unix://".length);
  throw new Error(
    `The benchmark talks to Docker over a unix socket only; DOCKER_HOST is "${host}"`,
  );
}
