#!/usr/bin/env node
// Loopback proxy that adds `Authorization: Bearer <token>` to every request, so the
// conformance server suite (which has no OAuth support of its own) can reach the
// protected MCP endpoint.
//
//   CONFORMANCE_TOKEN=... node proxy.mjs --target http://127.0.0.1:8002 [--listen 0]
//
// Paths are forwarded unchanged to the target's origin, so the suite is pointed at
// http://127.0.0.1:<port>/mcp. Host and Origin are passed through as the client sent
// them: the DNS-rebinding scenario relies on the server seeing them. Bodies are streamed
// both ways (SSE). Prints `proxy listening on http://127.0.0.1:<port>` once ready.

import http from 'node:http';

let target;
let listen = 0;
let token = process.env.CONFORMANCE_TOKEN;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--target') target = argv[++i];
  else if (argv[i] === '--listen') listen = Number(argv[++i]);
  // Prefer the environment: argv is visible to other local users.
  else if (argv[i] === '--token') token = argv[++i];
  else {
    process.stderr.write(`proxy.mjs: unknown argument ${argv[i]}\n`);
    process.exit(2);
  }
}
if (!target || !token) {
  process.stderr.write('usage: CONFORMANCE_TOKEN=... proxy.mjs --target URL [--listen PORT]\n');
  process.exit(2);
}
const upstream = new URL(target);

// Hop-by-hop headers (RFC 9110 §7.6.1) are for this connection only.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

const server = http.createServer((req, res) => {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
  headers.authorization = `Bearer ${token}`;
  const out = http.request(
    {
      protocol: upstream.protocol,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
    },
    (up) => {
      const h = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP.has(k)) h[k] = v;
      res.writeHead(up.statusCode, up.statusMessage, h);
      // SSE: send each event as soon as it arrives.
      res.flushHeaders();
      up.pipe(res);
      up.on('error', () => res.destroy());
    },
  );
  out.on('error', (e) => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${e.message}\n`);
    } else res.destroy();
  });
  // A client that goes away must not leave the upstream stream open.
  res.on('close', () => out.destroy());
  req.pipe(out);
});
// Long-lived SSE streams must not be cut by the default timeouts.
server.requestTimeout = 0;
server.headersTimeout = 0;
server.keepAliveTimeout = 5000;
server.listen(listen, '127.0.0.1', () => {
  process.stdout.write(`proxy listening on http://127.0.0.1:${server.address().port}\n`);
});
// Open SSE streams would keep a graceful close waiting forever.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
