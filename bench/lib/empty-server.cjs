// A reference point for memory, not a product: the least HTTP daemon on Node. A node:http server
// that answers every request with a short JSON body; with an undici entry as argument, `POST /fwd`
// is first sent on through an undici Pool to the server's own `/` (Node's HTTP server and undici's
// client as the executable bundles it, the two parts every executor request goes through, and
// nothing else).
// Usage: node empty-server.cjs [UNDICI_ENTRY]; prints its port.
"use strict";
const http = require("node:http");
const entry = process.argv[2];
if (entry) {
  // As in the executable's bundle (build/slim/no-http2.cjs): undici's HTTP/2 client gets no
  // node:http2, so that neither it nor the tls and crypto it loads count in this reference.
  const Module = require("node:module");
  const load = Module._load;
  Module._load = function (request, parent, ...rest) {
    if (
      (request === "node:http2" || request === "http2") &&
      /client-h2\.js$/.test(parent?.filename ?? "")
    )
      throw new Error("node:http2 is left out");
    return load.call(this, request, parent, ...rest);
  };
}
let pool;
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", async () => {
    if (pool && req.url === "/fwd") {
      const r = await pool.request({
        method: "POST",
        path: "/",
        body: "{}",
        headers: { "content-type": "application/json" },
      });
      await r.body.text();
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
  });
});
server.listen(0, "127.0.0.1", () => {
  const port = server.address().port;
  if (entry)
    pool = new (require(entry).Pool)(`http://127.0.0.1:${port}`, {
      connections: 32,
      pipelining: 1,
    });
  process.stdout.write(`${port}\n`);
});
