/** X-Request-Id: the client's when it is sane (1–255 of letters, digits, `_`, `-`, `=`), else a fresh one. */
export function requestIdOf(given: unknown): string {
  return typeof given === "string" && given.length > 0 && given.length <= 255 && !/[^\w\-=]/.test(given) ? given : freshId();
}

/**
 * A fresh id in the form of a version 4 UUID, from Math.random. Request ids label answers and log
 * lines; they guard nothing, so they need to be unique, not unguessable. crypto.randomUUID() would
 * load Node's whole crypto module on the first request without an id (the MECA host actor never
 * sends one), about 1.6 MB of resident memory for an executor that has no other use for it.
 */
export function freshId(): string {
  const a = hex8();
  const b = hex8();
  const c = hex8();
  const d = hex8();
  const variant = ((Number.parseInt(c[0]!, 16) & 0x3) | 0x8).toString(16);
  return `${a}-${b.slice(0, 4)}-4${b.slice(5)}-${variant}${c.slice(1, 4)}-${c.slice(4)}${d}`;
}

function hex8(): string {
  return Math.floor(Math.random() * 0x100000000)
    .toString(16)
    .padStart(8, "0");
}
