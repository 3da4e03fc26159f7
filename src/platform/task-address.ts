/**
 * A task's address is the host's business: errors that reach a client name what went wrong, never
 * where the task sits (its endpoint stays in the error's `where`, for the log). Shared by both task
 * clients.
 */

/** `message` with the task's endpoint (`http://10.201.0.2:8080`) and its host part taken out. */
export function withoutAddress(message: string, endpoint: string): string {
  let host = endpoint;
  try {
    host = new URL(endpoint).host;
  } catch {
    // not a URL: the endpoint itself is all there is to take out
  }
  return message.split(endpoint).join("the task").split(host).join("the task");
}

/** What went wrong with a request to the task at `endpoint`, for the client: the error's message and code, without the address. */
export function reasonFor(err: unknown, endpoint: string): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = withoutAddress(typeof e.message === "string" ? e.message : String(err), endpoint);
  return typeof e.code === "string" && !message.includes(e.code)
    ? `${message} (${e.code})`
    : message;
}
