/** The Hono app over an Executor with fake ports: HTTP tests with no socket and no Docker. */
import { honoApp, type AppOptions } from "../../src/http/app.ts";
import { createHttp } from "../../src/http/pipeline.ts";
import { fakeExecutor } from "./fake-executor.ts";

type AppExtras = Partial<Omit<AppOptions, "executor" | "logger" | "onStop">>;

export async function fakeApp(o: Parameters<typeof fakeExecutor>[0] & AppExtras = {}) {
  const parts = await fakeExecutor(o);
  let stops = 0;
  const { serve } = createHttp({
    // Tests that check whose fault a failure is read the statuses that say it; the default ("ok")
    // has tests of its own, as MECA's clients read answers.
    failureStatus: "http",
    ...o,
    executor: parts.executor,
    logger: parts.logger,
    maxBodyBytes: o.maxBodyBytes ?? 1024 * 1024,
    onStop: () => stops++,
  });
  const app = honoApp(serve);
  const request = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    // Bodies go as JSON, as MECA's clients send them (admin routes refuse other content types).
    const typed = Object.keys(headers).some((k) => k.toLowerCase() === "content-type");
    const type: Record<string, string> =
      body === undefined || typed ? {} : { "content-type": "application/json" };
    const res = await app.request(path, {
      method,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      headers: { ...type, ...headers },
    });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json, headers: res.headers };
  };
  return { ...parts, app, serve, request, stops: () => stops };
}
