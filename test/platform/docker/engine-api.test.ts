import { describe, expect, it } from "vitest";
import { EngineUnavailableError } from "../../../src/engine/errors.ts";
import { DockerApiError } from "../../../src/platform/docker/docker-api.ts";
import {
  chooseApiVersion,
  EngineApi,
  imagePath,
  type EngineFetch,
} from "../../../src/platform/docker/engine-api.ts";

interface Call {
  method: string;
  url: string;
  body?: string;
}

/** A fetch that answers from a table of "METHOD /path" handlers and records the calls. */
function fakeFetch(routes: Record<string, (url: URL) => Response>): {
  fetch: EngineFetch;
  calls: Call[];
} {
  const calls: Call[] = [];
  const fetch: EngineFetch = async (url, init) => {
    const u = new URL(url);
    calls.push({
      method: init.method ?? "GET",
      url: u.pathname + u.search,
      body: init.body as string | undefined,
    });
    const handler = routes[`${init.method ?? "GET"} ${u.pathname}`];
    return handler ? handler(u) : Response.json({ message: "page not found" }, { status: 404 });
  };
  return { fetch, calls };
}

const version = () =>
  Response.json({ Version: "20.10.24", ApiVersion: "1.41", MinAPIVersion: "1.12" });

describe("EngineApi", () => {
  it("negotiates the API version once from /version and prefixes every path", async () => {
    const { fetch, calls } = fakeFetch({
      "GET /version": version,
      "GET /v1.41/info": () => Response.json({ Runtimes: { runc: {} } }),
    });
    const api = new EngineApi({ fetch, baseUrl: "http://localhost", transport: "unix:///x.sock" });
    await api.info();
    await api.info();
    expect(calls.map((c) => c.url)).toEqual(["/version", "/v1.41/info", "/v1.41/info"]);
  });

  it("uses a forced API version without asking", async () => {
    const { fetch, calls } = fakeFetch({ "GET /v1.40/info": () => Response.json({}) });
    await new EngineApi({
      fetch,
      baseUrl: "http://localhost",
      transport: "t",
      apiVersion: "1.40",
    }).info();
    expect(calls.map((c) => c.url)).toEqual(["/v1.40/info"]);
  });

  it("sends the create body as JSON with the name in the query", async () => {
    const { fetch, calls } = fakeFetch({
      "GET /version": version,
      "POST /v1.41/containers/create": () =>
        Response.json({ Id: "abc", Warnings: [] }, { status: 201 }),
    });
    const api = new EngineApi({ fetch, baseUrl: "http://localhost", transport: "t" });
    expect(await api.createContainer("meca-1", { Image: "x" })).toBe("abc");
    expect(calls[1]).toEqual({
      method: "POST",
      url: "/v1.41/containers/create?name=meca-1",
      body: '{"Image":"x"}',
    });
  });

  it("turns an error status into DockerApiError with Docker's message", async () => {
    const { fetch } = fakeFetch({
      "GET /version": version,
      "DELETE /v1.41/containers/abc": () =>
        Response.json(
          { message: "removal of container abc is already in progress" },
          { status: 409 },
        ),
    });
    const err = await new EngineApi({ fetch, baseUrl: "http://localhost", transport: "t" })
      .removeContainer("abc")
      .catch((e) => e);
    expect(err).toBeInstanceOf(DockerApiError);
    expect(err).toMatchObject({
      status: 409,
      reason: "removal of container abc is already in progress",
    });
  });

  it("says the engine is unavailable when fetch fails, and asks /version again next time", async () => {
    let up = false;
    const calls: string[] = [];
    const fetch: EngineFetch = async (url) => {
      calls.push(new URL(url).pathname);
      if (!up)
        throw new TypeError("fetch failed", {
          cause: Object.assign(new Error("connect ECONNREFUSED /x.sock"), { code: "ECONNREFUSED" }),
        });
      return new URL(url).pathname === "/version" ? version() : Response.json([]);
    };
    const api = new EngineApi({ fetch, baseUrl: "http://localhost", transport: "unix:///x.sock" });
    const err = await api.listContainers({}).catch((e) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect(err.message).toBe(
      'Cannot reach the Docker engine at "unix:///x.sock": connect ECONNREFUSED /x.sock',
    );
    up = true;
    expect(await api.listContainers({ label: ["a=1"] })).toEqual([]);
    expect(calls).toEqual(["/version", "/version", "/v1.41/containers/json"]);
  });

  it("rethrows the signal's reason when a request is aborted", async () => {
    const reason = new Error("stop");
    const fetch: EngineFetch = (_url, init) =>
      new Promise((_, reject) => {
        const fail = () => reject(new DOMException("aborted", "AbortError"));
        if (init.signal?.aborted) fail();
        init.signal?.addEventListener("abort", fail);
      });
    const api = new EngineApi({
      fetch,
      baseUrl: "http://localhost",
      transport: "t",
      apiVersion: "1.41",
    });
    const ac = new AbortController();
    const pending = api.events({}, ac.signal);
    setTimeout(() => ac.abort(reason), 10);
    await expect(pending).rejects.toBe(reason);
  });

  it("uses the stream fetch for follows, events and pulls", async () => {
    const used: string[] = [];
    const make =
      (name: string): EngineFetch =>
      async () => {
        used.push(name);
        return new Response("");
      };
    const api = new EngineApi({
      fetch: make("calls"),
      streamFetch: make("streams"),
      baseUrl: "http://h",
      transport: "t",
      apiVersion: "1.41",
    });
    await api.logs("a", { follow: true });
    await api.logs("a", { follow: false, tail: 5 });
    await api.events({}, new AbortController().signal);
    await api.pull({ fromImage: "x", tag: "1" });
    expect(used).toEqual(["streams", "calls", "streams", "streams"]);
  });
});

describe("EngineApi over a transport without Web streams", () => {
  /** An answer that is not a Web Response: its body is a plain async iterable. */
  function answer(chunks: string[] | null, read: string[] = []) {
    async function* body(): AsyncGenerator<Uint8Array> {
      for (const c of chunks ?? []) {
        read.push(c);
        yield new TextEncoder().encode(c);
      }
    }
    return {
      status: 204,
      statusText: "No Content",
      body: chunks === null ? null : body(),
      text: async () => "",
      json: async () => ({}),
    };
  }

  it("reads a short answer's body to its end through the iterable", async () => {
    const read: string[] = [];
    const api = new EngineApi({
      fetch: async () => answer(["a", "b"], read),
      baseUrl: "http://h",
      transport: "t",
      apiVersion: "1.41",
    });
    await api.removeContainer("abc");
    expect(read).toEqual(["a", "b"]);
  });

  it("gives an empty async iterable, not a Web stream, for an answer without a body", async () => {
    const api = new EngineApi({
      fetch: async () => answer(null),
      baseUrl: "http://h",
      transport: "t",
      apiVersion: "1.41",
    });
    await api.startContainer("abc");
    const source = await api.logs("abc", { follow: false });
    expect(source).not.toBeInstanceOf(ReadableStream);
    const chunks: Uint8Array[] = [];
    for await (const chunk of source as AsyncIterable<Uint8Array>) chunks.push(chunk);
    expect(chunks).toEqual([]);
  });
});

describe("chooseApiVersion()", () => {
  it("speaks 1.41, or less to an older engine, or the minimum of a newer one", () => {
    expect(chooseApiVersion({ Version: "20.10", ApiVersion: "1.41" })).toBe("1.41");
    expect(chooseApiVersion({ Version: "19.03", ApiVersion: "1.40" })).toBe("1.40");
    expect(chooseApiVersion({ Version: "26", ApiVersion: "1.45", MinAPIVersion: "1.24" })).toBe(
      "1.41",
    );
    expect(chooseApiVersion({ Version: "29", ApiVersion: "1.52", MinAPIVersion: "1.44" })).toBe(
      "1.44",
    );
  });
});

describe("imagePath()", () => {
  it("keeps slashes and escapes the rest", () => {
    expect(imagePath("127.0.0.1:5055/meca-test/echo:1")).toBe(
      "127.0.0.1%3A5055/meca-test/echo%3A1",
    );
  });
});
