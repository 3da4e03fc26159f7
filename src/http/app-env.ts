/**
 * What the routes share with the path that serves them (pipeline.ts): its options and limits. A
 * module of its own, so that no route imports the path back.
 */
import type { Executor } from "../engine/executor.ts";
import type { Logger } from "../engine/ports.ts";
import type { FailureStatus } from "./errors.ts";

export interface AppOptions {
  executor: Executor;
  logger: Logger;
  /** When set, pause, unpause, update-config and stop need `Authorization: Bearer <token>`. */
  adminToken?: string;
  /** Larger request bodies get 413. */
  maxBodyBytes: number;
  /** Larger bodies of admin routes get 413, checked before the body is read (default 64 KiB). */
  maxAdminBodyBytes?: number;
  /** Request input all requests together may hold in memory; past it, 503 (default unbounded). */
  maxBufferedInputBytes?: number;
  /** Web origins allowed besides loopback ones and `null`. */
  allowedOrigins?: readonly string[];
  /** The listen address: with a loopback one, requests must name a loopback Host. */
  listenHost?: string;
  /** Called after POST /stop has answered: clean up and exit 0. */
  onStop: () => void;
  /** How POST / answers a request it understood but could not serve (default "ok": 200 with the envelope). */
  failureStatus?: FailureStatus;
  /** One debug line per request (id, method, path, status, ms); off unless the log level is debug. */
  accessLog?: boolean;
  /** How tasks are reached and why, shown by GET /tasks. */
  placement?: { mode: string; network?: string; reason: string };
  /** Whether the host's addresses are closed to tasks, shown by GET /tasks. */
  hostFirewall?: () => unknown;
  /** The tasks' CPU priority (task_cpu_priority): its parent cgroup and whether its weight is set. */
  cpuPriority?: () => unknown;
}

export const DEFAULT_MAX_ADMIN_BODY_BYTES = 64 * 1024;
