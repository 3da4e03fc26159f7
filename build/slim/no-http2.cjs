"use strict";
// What undici's HTTP/2 client gets for `require('node:http2')` in the executable's bundle.
// Tasks are called over plain HTTP/1.1, so undici never opens an HTTP/2 session; loading
// node:http2 would load tls and crypto with it, ~5 MB of resident memory for nothing.
// undici's client-h2.js catches this error and goes on without HTTP/2, as on a Node built
// without it.
throw new Error("node:http2 is left out of the executable: tasks are called over HTTP/1.1");
