import { setImmediate } from "node:timers";
import type { Clock } from "../engine/ports.ts";

/** Wall-clock time; timers do not keep the process alive on their own. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms) as unknown as { unref?: () => void };
    t.unref?.();
    return () => clearTimeout(t as unknown as number);
  },
  soon: (fn) => void setImmediate(fn),
};
