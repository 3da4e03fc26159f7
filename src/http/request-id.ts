/** X-Request-Id: the client's when it is sane (1–255 of letters, digits, `_`, `-`, `=`), else a fresh one. */
export function requestIdOf(given: unknown): string {
  return typeof given === "string" &&
    given.length > 0 &&
    given.length <= 255 &&
    !/[^\w\-=]/.test(given)
    ? given
    : freshId();
}

/**
 * Fresh ids in the form of a version 4 UUID: 80 random bits drawn once per process, then a
 * counter. Request ids label answers and log lines; they guard nothing, so they need to be
 * unique, not unguessable. crypto.randomUUID() would load Node's whole crypto module on the first
 * request without an id (the MECA host actor never sends one), about 1.6 MB of resident memory
 * for an executor that has no other use for it, and cost more per request than a counter.
 */
const prefix = `${hex(8)}-${hex(4)}-4${hex(3)}-${((Math.random() * 4) | 8).toString(16)}${hex(3)}-`;
let counter = 0;

export function freshId(): string {
  counter = (counter + 1) % 0x1000000000000;
  return prefix + counter.toString(16).padStart(12, "0");
}

function hex(digits: number): string {
  let out = "";
  for (let i = 0; i < digits; i++) out += ((Math.random() * 16) | 0).toString(16);
  return out;
}
