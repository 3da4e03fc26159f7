"use strict";
// What the executable bundles for `import ... from "undici"`: only what src/ uses (the task
// client's Pool and buildConnector), each from its own module, with the request API on
// Dispatcher as undici's index.js sets it. undici's index.js also loads fetch, proxies, mocks,
// caches, cookies, WebSocket, zlib and worker_threads at start-up; none of them runs here.
// A name src/ imports that is missing here fails the build (build/bundle-options.ts checks it),
// and in the bundle undici's HTTP/2 client goes without node:http2 (see no-http2.cjs).
const Dispatcher = require("undici/lib/dispatcher/dispatcher");
Object.assign(Dispatcher.prototype, require("undici/lib/api"));

module.exports.Dispatcher = Dispatcher;
module.exports.Pool = require("undici/lib/dispatcher/pool");
module.exports.buildConnector = require("undici/lib/core/connect");
module.exports.errors = require("undici/lib/core/errors");
