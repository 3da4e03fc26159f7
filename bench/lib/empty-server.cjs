// A reference point for memory, not a product: the least HTTP daemon on Node. A node:http server
// that answers every request with a short JSON body; with an undici entry as argument, `POST /fwd`
// is first sent on through an undici Pool to the server's own `/` (Node's HTTP server and undici's
// client, the two parts every executor request goes through, and nothing else).
// Usage: node empty-server.cjs [UNDICI_ENTRY]; prints its port.
"use strict";
const http = require("node:http");
const entry = process.argv[2];
let pool;
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", async () => {
    if (pool && req.url === "/fwd") {
      const r = await pool.request({ method: "POST", path: "/", body: "{}", headers: { "content-type": "application/json" } });
      await r.body.text();
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
  });
});
server.listen(0, "127.0.0.1", () => {
  const port = server.address().port;
  if (entry) pool = new (require(entry).Pool)(`http://127.0.0.1:${port}`, { connections: 32, pipelining: 1 });
  process.stdout.write(`${port}\n`);
});
