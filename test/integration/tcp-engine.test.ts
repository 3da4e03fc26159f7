/**
 * DOCKER_HOST=tcp:// without TLS goes through fetch, like the unix socket. The
 * engine is reached through a plain TCP relay on 127.0.0.1 to its socket.
 */
import { connect, createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ECHO_IMAGE } from "../support/fixtures.ts";
import { startExecutor } from "../support/harness.ts";

describe("DOCKER_HOST=tcp:// (plain)", () => {
  let relay: Server;
  let port: number;
  let connections = 0;
  beforeAll(async () => {
    relay = createServer((client) => {
      connections++;
      const engine = connect("/var/run/docker.sock");
      client.pipe(engine).pipe(client);
      engine.on("error", () => client.destroy());
      client.on("error", () => engine.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
    port = (relay.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => relay.close(() => r())));

  it("runs tasks on the engine behind the TCP address", async () => {
    const h = await startExecutor({}, { ...process.env, DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    try {
      expect(h.executor.engineStatus().info?.transport).toBe(`tcp://127.0.0.1:${port}`);
      const r = await h.execute({
        id: ECHO_IMAGE,
        resource: { cpu: 0.1, mem: 33 },
        input: "over tcp",
      });
      expect(r).toMatchObject({ status: 200, body: { success: true, msg: "over tcp" } });
      expect(connections).toBeGreaterThan(0);
    } finally {
      expect(await h.close()).toEqual([]);
    }
  });
});
