/**
 * The HTTP face of the executor as a Hono app, for Deno's listener and `app.request()` in tests:
 * every request goes to the one path (pipeline.ts) as a Web Request, and its answer comes back as
 * a Web Response. Node's listener calls the path itself (node-listen.ts).
 */
import { Hono } from "hono";
import type { AppOptions } from "./app-env.ts";
import { toResponse } from "./errors.ts";
import { createHttp, type PlainRequest, type Serve } from "./pipeline.ts";
import { readBody, webBodySource } from "./body.ts";

export type { AppOptions } from "./app-env.ts";
export { DEFAULT_MAX_ADMIN_BODY_BYTES } from "./app-env.ts";

export function createApp(o: AppOptions): Hono {
  return honoApp(createHttp(o).serve);
}

/** A Hono app that hands every request to `serve`. */
export function honoApp(serve: Serve): Hono {
  const app = new Hono();
  app.all("*", async (c) => {
    const req = c.req.raw;
    const answer = await serve(webRequest(req));
    const res = toResponse(answer);
    return req.method === "HEAD" ? new Response(null, res) : res;
  });
  return app;
}

/** A Web Request as the path reads it. */
export function webRequest(req: Request): PlainRequest {
  const url = new URL(req.url);
  return {
    method: req.method,
    url: url.pathname + url.search,
    header: (name) => req.headers.get(name) ?? (name === "host" ? url.host : undefined),
    body: (limits) => readBody(limits, req.headers.get("content-length"), webBodySource(req.body)),
    signal: () => req.signal,
    aborted: () => req.signal.aborted,
  };
}
