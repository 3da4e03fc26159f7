/** X-Request-Id: the client's when it is sane (1–255 of letters, digits, `_`, `-`, `=`), else a fresh one. */
export function requestIdOf(given: unknown): string {
  return typeof given === "string" && given.length > 0 && given.length <= 255 && !/[^\w\-=]/.test(given) ? given : crypto.randomUUID();
}
