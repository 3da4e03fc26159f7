// A reference point, not a product: the least a Node forwarder does for POST /
// (node:http server, JSON body, undici Pool with keep-alive to the task, the
// {success,msg} envelope back). No validation, no timeouts, no task pool.
// The benchmark runs it beside the executor to show what Node itself costs on
// this machine.  Usage: node floor-forwarder.mjs PORT TASK_ORIGIN
import http from "node:http";
import { Pool } from "undici";

const [port, origin] = process.argv.slice(2);
const pool = new Pool(origin, {
  connections: 32,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  headersTimeout: 0,
  bodyTimeout: 0,
});

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    try {
      const { input } = JSON.parse(Buffer.concat(chunks).toString());
      const r = await pool.request({
        method: "POST",
        path: "/",
        body: input,
        headers: { "content-type": "application/json" },
      });
      const out = `{"success":true,"msg":${JSON.stringify(await r.body.text())}}`;
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(out),
      });
      res.end(out);
    } catch (e) {
      res.writeHead(502).end(String(e));
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => process.stdout.write("listening\n"));
process.on("SIGTERM", () => process.exit(0));
