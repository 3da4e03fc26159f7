/**
 * Keeps web pages from driving the executor. A page in a browser can send
 * requests to 127.0.0.1 and, through DNS rebinding, under a name of its own:
 *   - a request whose `Origin` is a web origin is refused (403), unless it is a
 *     loopback origin, `null` (the MECA desktop app's packaged `file://` page) or
 *     listed in `allowed_origins`;
 *   - on a connection to a loopback listener, a `Host` that is not a loopback
 *     name or address is refused (403): only a rebound name would bring one.
 *     The connection's local address tells which listener took it; without
 *     one (Deno, `app.request()`), `listenHost` does.
 * Clients other than browsers (the host actor, curl) send no Origin.
 */
import { ForbiddenError } from "../engine/errors.ts";

export interface OriginGuardOptions {
  /** Origins allowed besides loopback ones and `null`, exactly as browsers send them (`http://host:port`). */
  allowedOrigins?: readonly string[];
  /** The address the executor listens on, for requests that do not tell their connection's local address. */
  listenHost?: string;
}

/**
 * The guard's check, run by the one HTTP path (pipeline.ts) on every request: throws a
 * ForbiddenError for a refused Origin or Host. `local` is the connection's local address
 * when known; `host` is asked for only when the Host is checked.
 */
export type OriginCheck = (
  origin: string | undefined,
  host: () => string | undefined,
  local: string | undefined,
) => void;

export function originCheck(o: OriginGuardOptions): OriginCheck {
  const allowed = new Set((o.allowedOrigins ?? []).map((s) => s.toLowerCase().replace(/\/+$/, "")));
  const checkHost = o.listenHost !== undefined && isLoopbackHost(o.listenHost);
  // Clients send the same Host on every request: remember the last one that passed.
  let passedHost = "";
  // Local addresses are the listeners' own: a handful.
  const loopbackLocal = new Map<string, boolean>();
  const onLoopback = (local: string) => {
    let is = loopbackLocal.get(local);
    if (is === undefined && loopbackLocal.size < 64)
      loopbackLocal.set(local, (is = isLoopbackHost(local)));
    return is ?? isLoopbackHost(local);
  };
  return (origin, hostOf, local) => {
    if (origin !== undefined && !originAllowed(origin, allowed)) {
      throw new ForbiddenError(
        `Requests from the web origin ${JSON.stringify(origin.slice(0, 200))} are refused; add it to allowed_origins to allow it`,
        "ORIGIN_REFUSED",
      );
    }
    if (local !== undefined ? onLoopback(local) : checkHost) {
      const host = hostOf();
      if (host !== undefined && host !== "" && host !== passedHost) {
        if (!isLoopbackHost(stripPort(host))) {
          throw new ForbiddenError(
            `Host ${JSON.stringify(host.slice(0, 200))} is refused: the executor listens on loopback and answers loopback names only`,
            "HOST_REFUSED",
          );
        }
        passedHost = host;
      }
    }
  };
}

/** `null`, a loopback origin (any scheme, any port), or one listed. */
export function originAllowed(origin: string, allowed: ReadonlySet<string>): boolean {
  const o = origin.trim().toLowerCase();
  if (o === "null" || allowed.has(o)) return true;
  let url: URL;
  try {
    url = new URL(o);
  } catch {
    return false;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && isLoopbackHost(url.hostname);
}

/** localhost (and names under .localhost), 127.0.0.0/8, ::1, in brackets or not. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1" || h === "::ffff:127.0.0.1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** `host:port` → host; `[::1]:80` → `[::1]`; a bare IPv6 address stays whole. */
function stripPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colons = host.split(":").length - 1;
  return colons === 1 ? host.slice(0, host.indexOf(":")) : host;
}
