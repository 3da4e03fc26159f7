/**
 * The last requests the executor answered, for the host's page (GET /requests, /ui): when, which
 * task, the outcome, how long, and whether a replica had to start for it. A fixed ring: adding is
 * one write, and nothing grows.
 */
import type { RequestUsage } from "./request-usage.ts";

export interface RecentRequest {
  /** Milliseconds since the epoch when it arrived. */
  at: number;
  image: string;
  /** The task key; "" when the request named no valid task. Hashed only when read (GET /requests). */
  key: string;
  /** "ok", or the error code it was answered with. */
  outcome: string;
  ms: number;
  /** A replica started for it (cold), rather than one that was ready (warm). */
  cold: boolean;
  /** What it used, where it reached a task and usage is on (usage.ts). */
  usage?: RequestUsage;
}

export class RecentRequests {
  #ring: (RecentRequest | undefined)[];
  #next = 0;

  constructor(readonly size = 100) {
    this.#ring = new Array<RecentRequest | undefined>(size);
  }

  add(r: RecentRequest): void {
    this.#ring[this.#next] = r;
    this.#next = (this.#next + 1) % this.size;
  }

  /** Oldest first. */
  list(): RecentRequest[] {
    const out: RecentRequest[] = [];
    for (let i = 0; i < this.size; i++) {
      const r = this.#ring[(this.#next + i) % this.size];
      if (r) out.push(r);
    }
    return out;
  }
}
