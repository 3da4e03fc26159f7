import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  TaskAnswerTooLargeError,
  TaskConnectError,
  TaskFailedError,
  TaskTimeoutError,
} from "../../src/engine/errors.ts";
import { FetchTaskClient } from "../../src/platform/fetch-task-client.ts";
import { UndiciTaskClient } from "../../src/platform/task-client.ts";

/** A raw TCP server on 127.0.0.1 whose behaviour each test scripts per request (`n` counts per connection). */
async function rawServer(onRequest: (socket: Socket, request: string, n: number) => void) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    allSockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let buf = "";
    let requests = 0;
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      const request = buf.slice(0, end + 4 + length);
      buf = buf.slice(end + 4 + length);
      onRequest(socket, request, ++requests);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  servers.push(server);
  return { url: `http://127.0.0.1:${port}`, port, sockets, connections: () => sockets.size };
}

function answer(socket: Socket, status: number, body: string): void {
  // Requests are read as latin1 (bytes); answer the same bytes back.
  socket.write(
    `HTTP/1.1 ${status} X\r\ncontent-length: ${Buffer.byteLength(body, "latin1")}\r\n\r\n${body}`,
    "latin1",
  );
}

const echo = (socket: Socket, request: string) =>
  answer(socket, 200, request.slice(request.indexOf("\r\n\r\n") + 4));

const servers: Server[] = [];
const allSockets = new Set<Socket>();
const clients: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const socket of allSockets) socket.destroy();
  allSockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** Sockets that `endless` streams on and that are still open. */
const streaming = new Set<Socket>();

/** Streams chunks of 'x' without end (at most 64 MiB), as fast as the socket takes them, until the peer goes. */
function endless(socket: Socket, opts: { chunked: boolean }): void {
  streaming.add(socket);
  socket.on("close", () => streaming.delete(socket));
  socket.write(
    `HTTP/1.1 200 OK\r\n${opts.chunked ? "transfer-encoding: chunked" : "content-length: 8589934592"}\r\n\r\n`,
  );
  const piece = Buffer.alloc(16 * 1024, "x");
  const frame = opts.chunked
    ? Buffer.concat([Buffer.from("4000\r\n"), piece, Buffer.from("\r\n")])
    : piece;
  let sent = 0;
  const pump = () => {
    while (!socket.destroyed && sent < 64 << 20) {
      sent += piece.length;
      if (!socket.write(frame)) return void socket.once("drain", pump);
    }
  };
  socket.on("error", () => {});
  pump();
}

function undici(opts?: ConstructorParameters<typeof UndiciTaskClient>[0]): UndiciTaskClient {
  const c = new UndiciTaskClient(opts);
  clients.push(c);
  return c;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe("UndiciTaskClient", () => {
  it("posts the body as it is and returns status and body, reusing one connection", async () => {
    const seen: string[] = [];
    const perConnection: number[] = [];
    const srv = await rawServer((s, req, n) => {
      seen.push(req);
      perConnection.push(n);
      echo(s, req);
    });
    // One connection per pool: the second request waits for the first's connection, no sleep needed.
    const client = undici({ connections: 1 });
    const body = '{"x": "é ✓😀"}';
    // Bytes as they go over the wire, UTF-8: é 2, ✓ 3, 😀 4.
    expect(await client.send({ method: "POST", endpoint: srv.url, path: "/", body })).toEqual({
      status: 200,
      body,
      sent: 19,
      received: 19,
    });
    expect(
      await client.send({ method: "POST", endpoint: srv.url, path: "/", body: "second" }),
    ).toEqual({ status: 200, body: "second", sent: 6, received: 6 });
    expect(perConnection).toEqual([1, 2]); // the second request came on the first one's connection
    expect(srv.connections()).toBe(1);
    expect(seen[0]).toMatch(/^POST \/ HTTP\/1\.1\r\n/);
    expect(seen[0]).toMatch(/content-type: application\/json/i);
  });

  it("returns an error status with its body; the engine decides what it means", async () => {
    const srv = await rawServer((s) => answer(s, 500, "boom"));
    expect(await undici().send({ method: "POST", endpoint: srv.url, path: "/", body: "" })).toEqual(
      { status: 500, body: "boom", sent: 0, received: 4 },
    );
  });

  it("sends a GET without a body", async () => {
    let seen = "";
    const srv = await rawServer((s, req) => {
      seen = req;
      answer(s, 200, "ra-report");
    });
    expect(await undici().send({ method: "GET", endpoint: srv.url, path: "/ra" })).toEqual({
      status: 200,
      body: "ra-report",
      sent: 0,
      received: 9,
    });
    expect(seen).toMatch(/^GET \/ra HTTP\/1\.1/);
    expect(seen).not.toMatch(/content-type/i);
  });

  it("rejects with TaskConnectError when the connection is refused", async () => {
    const port = await closedPort();
    await expect(
      undici().send({ method: "POST", endpoint: `http://127.0.0.1:${port}`, path: "/", body: "x" }),
    ).rejects.toBeInstanceOf(TaskConnectError);
  });

  it("rejects with TaskConnectError when a fresh connection closes before any answer (Docker's port proxy)", async () => {
    const client = undici();
    // Accept, then close at once without reading, as docker-proxy does when the task does not listen yet.
    const proxyLike = await new Promise<{ url: string }>((resolve) => {
      const server = createServer((socket) => socket.destroy());
      servers.push(server);
      server.listen(0, "127.0.0.1", () =>
        resolve({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }),
      );
    });
    for (let i = 0; i < 5; i++) {
      await expect(
        client.send({ method: "POST", endpoint: proxyLike.url, path: "/", body: "x" }),
      ).rejects.toBeInstanceOf(TaskConnectError);
    }
  });

  it("rejects with TaskConnectError when forget() cuts a request its task never answered (the task was removed)", async () => {
    // The task holds the request without a byte back, as a dead address holds a connect.
    const srv = await rawServer(() => {});
    const client = undici();
    const pending = client.send({ method: "POST", endpoint: srv.url, path: "/", body: "x" });
    await until(() => srv.connections() === 1);
    client.forget(srv.url);
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskConnectError);
    expect((err as Error).message).toContain("was removed before it answered");
  });

  it("rejects with TaskFailedError when a used connection breaks under the request", async () => {
    const srv = await rawServer((s, req, n) => (n === 1 ? echo(s, req) : s.destroy()));
    // One connection per pool: the second request goes on the first one's connection, no sleep needed.
    const client = undici({ connections: 1 });
    await client.send({ method: "POST", endpoint: srv.url, path: "/", body: "first" });
    const err = await client
      .send({ method: "POST", endpoint: srv.url, path: "/", body: "exit:3" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect(err).not.toBeInstanceOf(TaskConnectError);
  });

  it("rejects with TaskFailedError when the answer breaks off mid-body", async () => {
    const srv = await rawServer((s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
      setTimeout(() => s.destroy(), 20);
    });
    await expect(
      undici().send({ method: "POST", endpoint: srv.url, path: "/", body: "x" }),
    ).rejects.toBeInstanceOf(TaskFailedError);
  });

  it("cuts a chunked answer past maxAnswerBytes while it streams: TASK_ANSWER_TOO_LARGE, connection closed", async () => {
    const srv = await rawServer((s) => endless(s, { chunked: true }));
    const err = await undici({ maxAnswerBytes: 100_000 })
      .send({ method: "POST", endpoint: srv.url, path: "/", body: "x" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TaskAnswerTooLargeError);
    expect(err.code).toBe("TASK_ANSWER_TOO_LARGE");
    await until(() => streaming.size === 0);
  });

  it("refuses an answer whose Content-Length is past maxAnswerBytes before reading it", async () => {
    const srv = await rawServer((s) => endless(s, { chunked: false }));
    const err = await undici({ maxAnswerBytes: 1000 })
      .send({ method: "POST", endpoint: srv.url, path: "/", body: "x" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TaskAnswerTooLargeError);
    await until(() => streaming.size === 0);
  });

  it("reads an answer of exactly maxAnswerBytes", async () => {
    const srv = await rawServer((s) => answer(s, 200, "y".repeat(1000)));
    expect(
      (
        await undici({ maxAnswerBytes: 1000 }).send({
          method: "POST",
          endpoint: srv.url,
          path: "/",
          body: "x",
        })
      ).body,
    ).toHaveLength(1000);
  });

  it("times out a task that sends no headers, and one that stops in the middle of its body", async () => {
    const silent = await rawServer(() => {});
    const client = undici({ answerTimeout: 100 });
    await expect(
      client.send({ method: "POST", endpoint: silent.url, path: "/", body: "x" }),
    ).rejects.toBeInstanceOf(TaskTimeoutError);
    const stalled = await rawServer((s) =>
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial"),
    );
    await expect(
      client.send({ method: "POST", endpoint: stalled.url, path: "/", body: "x" }),
    ).rejects.toBeInstanceOf(TaskTimeoutError);
  });

  it("rejects with the signal's reason when aborted", async () => {
    const srv = await rawServer(() => {});
    const ac = new AbortController();
    const reason = new Error("request timeout");
    setTimeout(() => ac.abort(reason), 50);
    await expect(
      undici().send({ method: "POST", endpoint: srv.url, path: "/", body: "x", signal: ac.signal }),
    ).rejects.toBe(reason);
  });

  it("rejects at once when aborted while waiting for a connection, and the request never reaches the task", async () => {
    const bodies: string[] = [];
    let release!: () => void;
    const srv = await rawServer((socket, request) => {
      const body = request.slice(request.indexOf("\r\n\r\n") + 4);
      bodies.push(body);
      if (body === "a") release = () => answer(socket, 200, body);
      else answer(socket, 200, body);
    });
    const client = undici({ connections: 1 });
    const first = client.send({ method: "POST", endpoint: srv.url, path: "/", body: "a" });
    await until(() => bodies.length === 1);
    const ac = new AbortController();
    const queued = client.send({
      method: "POST",
      endpoint: srv.url,
      path: "/",
      body: "b",
      signal: ac.signal,
    });
    const reason = new Error("client went away");
    ac.abort(reason);
    await expect(queued).rejects.toBe(reason);
    release();
    expect(await first).toEqual({ status: 200, body: "a", sent: 1, received: 1 });
    expect(await client.send({ method: "POST", endpoint: srv.url, path: "/", body: "c" })).toEqual({
      status: 200,
      body: "c",
      sent: 1,
      received: 1,
    });
    expect(bodies).toEqual(["a", "c"]);
  });

  it("forget() closes the connections to that endpoint only", async () => {
    const a = await rawServer(echo);
    const b = await rawServer(echo);
    const client = undici();
    await client.send({ method: "POST", endpoint: a.url, path: "/", body: "a" });
    await client.send({ method: "POST", endpoint: b.url, path: "/", body: "b" });
    client.forget(a.url);
    await until(() => a.connections() === 0);
    expect(b.connections()).toBe(1);
    expect(
      await client.send({ method: "POST", endpoint: a.url, path: "/", body: "again" }),
    ).toEqual({ status: 200, body: "again", sent: 5, received: 5 });
  });
});

describe("FetchTaskClient", () => {
  it("cuts an answer past maxAnswerBytes, chunked or announced", async () => {
    for (const chunked of [true, false]) {
      const srv = await rawServer((s) => endless(s, { chunked }));
      const err = await new FetchTaskClient({ maxAnswerBytes: 100_000 })
        .send({ method: "POST", endpoint: srv.url, path: "/", body: "x" })
        .catch((e) => e);
      expect(err).toBeInstanceOf(TaskAnswerTooLargeError);
      await until(() => streaming.size === 0);
    }
  });

  it("posts the body and returns status and body", async () => {
    const srv = await rawServer(echo);
    expect(
      await new FetchTaskClient().send({
        method: "POST",
        endpoint: srv.url,
        path: "/",
        body: "hé✓",
      }),
    ).toEqual({ status: 200, body: "hé✓", sent: 6, received: 6 });
  });

  it("rejects with TaskConnectError when the connection is refused", async () => {
    const port = await closedPort();
    await expect(
      new FetchTaskClient().send({
        method: "POST",
        endpoint: `http://127.0.0.1:${port}`,
        path: "/",
        body: "x",
      }),
    ).rejects.toBeInstanceOf(TaskConnectError);
  });

  it("rejects with TaskFailedError when the answer breaks off, and with the reason when aborted", async () => {
    const srv = await rawServer((s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
      setTimeout(() => s.destroy(), 20);
    });
    await expect(
      new FetchTaskClient().send({ method: "POST", endpoint: srv.url, path: "/", body: "x" }),
    ).rejects.toBeInstanceOf(TaskFailedError);
    const silent = await rawServer(() => {});
    const reason = new Error("stop");
    const ac = new AbortController();
    setTimeout(() => ac.abort(reason), 50);
    await expect(
      new FetchTaskClient().send({
        method: "POST",
        endpoint: silent.url,
        path: "/",
        body: "x",
        signal: ac.signal,
      }),
    ).rejects.toBe(reason);
  });
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}
