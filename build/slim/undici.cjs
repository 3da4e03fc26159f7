'use strict'
// What the executable bundles for `import ... from "undici"`: only what src/ uses (Pool, Agent,
// buildConnector, fetch), each from its own module, with the request API on Dispatcher as
// undici's index.js sets it. undici's index.js also loads HTTP/2, proxies, mocks, caches,
// cookies, WebSocket, zlib and worker_threads at start-up; none of them runs here.
// A name src/ imports that is missing here fails the build (build/bundle-options.ts checks it).
const Dispatcher = require('undici/lib/dispatcher/dispatcher')
Object.assign(Dispatcher.prototype, require('undici/lib/api'))

module.exports.Dispatcher = Dispatcher
module.exports.Pool = require('undici/lib/dispatcher/pool')
module.exports.Agent = require('undici/lib/dispatcher/agent')
module.exports.buildConnector = require('undici/lib/core/connect')
module.exports.errors = require('undici/lib/core/errors')
// undici's fetch (with its own Headers, Request, Response, WebIDL and zlib) loads on first call.
let fetchImpl
module.exports.fetch = function fetch (init, options = undefined) {
  fetchImpl ??= require('undici/lib/web/fetch').fetch
  return fetchImpl(init, options).catch((err) => {
    if (err && typeof err === 'object') Error.captureStackTrace(err, module.exports.fetch)
    throw err
  })
}
