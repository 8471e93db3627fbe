#!/usr/bin/env node
// Gets an access token for the MCP server from the authorization server with the
// authorization code grant and PKCE (S256), signing in and approving through the HTML
// pages (login.mjs), so the server suite can run behind proxy.mjs unattended.
//
//   node token.mjs --issuer URL --resource URL [--client-id ID] [--client-secret S]
//                  [--scope "mcp:read mcp:write"] [--port 8976] [--user U] [--password P] [--json]
//
// Prints the access token (or, with --json, the whole token response) on stdout.

import { createHash, randomBytes } from 'node:crypto';
import { approve } from './login.mjs';

const opts = {
  issuer: process.env.CONFORMANCE_ISSUER,
  resource: process.env.CONFORMANCE_RESOURCE,
  clientId: process.env.CONFORMANCE_CLIENT_ID ?? 'mcp-test-client',
  clientSecret: process.env.CONFORMANCE_CLIENT_SECRET,
  scope: 'mcp:read mcp:write',
  // Nothing listens there: the redirect is read from the Location header, never followed.
  port: 8976,
  user: process.env.CONFORMANCE_USER ?? 'testuser',
  password: process.env.CONFORMANCE_PASSWORD ?? 'testpass',
  json: false,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i];
  const key = {
    '--issuer': 'issuer',
    '--resource': 'resource',
    '--client-id': 'clientId',
    '--client-secret': 'clientSecret',
    '--scope': 'scope',
    '--port': 'port',
    '--user': 'user',
    '--password': 'password',
  }[flag];
  if (flag === '--json') opts.json = true;
  else if (key) opts[key] = argv[++i];
  else die(`unknown argument ${flag}`);
}
if (!opts.issuer) die('--issuer is required');

function die(msg) {
  process.stderr.write(`token.mjs: ${msg}\n`);
  process.exit(1);
}

try {
  const metaRes = await fetch(`${opts.issuer}/.well-known/oauth-authorization-server`);
  if (!metaRes.ok) die(`metadata: HTTP ${metaRes.status}`);
  const meta = await metaRes.json();

  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  const redirectUri = `http://127.0.0.1:${opts.port}/callback`;
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: opts.clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
  });
  if (opts.scope) q.set('scope', opts.scope);
  if (opts.resource) q.set('resource', opts.resource);

  const response = new URL(await approve(`${meta.authorization_endpoint}?${q}`, opts));
  const p = response.searchParams;
  if (p.get('error')) die(`authorization error: ${p.get('error')} ${p.get('error_description') ?? ''}`);
  if (p.get('state') !== state) die(`state mismatch in ${response}`);
  if (p.has('iss') && p.get('iss') !== meta.issuer) die(`iss mismatch in ${response}`);

  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: p.get('code'),
    redirect_uri: redirectUri,
    code_verifier: verifier,
  });
  if (opts.resource) body.set('resource', opts.resource);
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (opts.clientSecret) {
    const enc = (s) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(opts.clientId)}:${enc(opts.clientSecret)}`).toString('base64')}`;
  } else {
    body.set('client_id', opts.clientId);
  }
  const tokRes = await fetch(meta.token_endpoint, { method: 'POST', headers, body });
  const tok = await tokRes.json();
  if (!tokRes.ok || typeof tok.access_token !== 'string') die(`token: HTTP ${tokRes.status} ${JSON.stringify(tok)}`);
  process.stdout.write(opts.json ? `${JSON.stringify(tok)}\n` : `${tok.access_token}\n`);
} catch (e) {
  die(e.message);
}
