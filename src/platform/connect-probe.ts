/**
 * Adoption's check that a leftover task still listens: a TCP connection to its base URL, opened and
 * closed at once, nothing sent (see docs/architecture.md, "Adoption"). node:net, which Deno has too.
 */
import { connect } from "node:net";
import type { ConnectProbe } from "../engine/ports.ts";

export const probeConnect: ConnectProbe = (endpoint, signal) =>
  new Promise<boolean>((resolve) => {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return resolve(false);
    }
    if (signal.aborted) return resolve(false);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const socket = connect({ host, port: Number(url.port || 80) });
    const done = (ok: boolean) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(ok);
    };
    const onAbort = () => done(false);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
