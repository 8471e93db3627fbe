// Interoperability cells for the official TypeScript MCP SDK against this authorization server
// and MCP resource server. Every OAuth step is taken by the SDK itself (auth(), the
// OAuthClientProvider below and StreamableHTTPClientTransport); this script only plays the user
// at the login and consent pages and checks what happened.
//
// Usage: node client.mjs <authorization-server-url> <mcp-url> [mode ...]
// Output: one JSON line per cell on stdout; diagnostics on stderr; exit 1 if any cell fails.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { InvalidClientMetadataError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const SDK_VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url), 'utf8'),
).version;

const DEFAULT_MODES = ['dcr-public', 'dcr-client_secret_basic', 'dcr-client_secret_post', 'cimd', 'preregistered', 'step-up'];
// Against the gateway in front of server-everything (asked for by name).
const ALL_MODES = [...DEFAULT_MODES, 'gateway-stdio', 'gateway-http'];
const USERNAME = process.env.INTEROP_USERNAME || 'testuser';
const PASSWORD = process.env.INTEROP_PASSWORD || 'testpass';
// The endpoint is the gateway in front of server-everything: exercise that server instead.
const GATEWAY = process.env.INTEROP_GATEWAY === 'everything';
const PREREGISTERED_CLIENT_ID = 'mcp-test-client';
// Nothing listens here: the scripted browser stops at the redirect and hands the code over.
const REDIRECT_URL = 'http://127.0.0.1:33418/callback';
const CELL_TIMEOUT_MS = 60_000;
// A refresh is only checked when the access token expires soon enough to wait for it.
const MAX_TOKEN_WAIT_S = 30;
// A certificate (and its key) for 127.0.0.1 to serve the CIMD document over https with, e.g. from
// interop/test-ca.sh; the stack must trust its issuer (SSL_CERT_FILE). Without them the document
// is served over http, which the SDK refuses.
const CIMD_CERT = process.env.INTEROP_CIMD_CERT || '';
const CIMD_KEY = process.env.INTEROP_CIMD_KEY || '';

class CellError extends Error {}
class Unsupported extends Error {}

function check(cond, message) {
  if (!cond) throw new CellError(message);
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

function log(mode, ...args) {
  console.error(`[${mode}]`, ...args);
}

// ---------------------------------------------------------------------------------------------
// Scripted browser: cookies by hand, no redirects followed automatically, no JavaScript.

function htmlUnescape(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/g, (_, e) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(cp);
    }
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e];
  });
}

function parseAttrs(tag) {
  const attrs = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/g)) {
    attrs[m[1].toLowerCase()] = htmlUnescape(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

// Returns { action, fields } for the form with the given id, or undefined.
function readForm(html, id) {
  const start = html.search(new RegExp(`<form[^>]*id="${id}"`));
  if (start < 0) return undefined;
  const end = html.indexOf('</form>', start);
  const body = html.slice(start, end < 0 ? undefined : end);
  const formTag = body.slice(0, body.indexOf('>') + 1);
  const fields = {};
  for (const m of body.matchAll(/<input\b[^>]*>/g)) {
    const a = parseAttrs(m[0]);
    if (a.type === 'hidden' && a.name) fields[a.name] = a.value ?? '';
  }
  return { action: parseAttrs(formTag).action, fields };
}

class Browser {
  constructor(mode) {
    this.mode = mode;
    this.cookies = new Map();
  }

  _remember(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some(a => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url, { method = 'GET', form } = {}) {
    const headers = { Accept: 'text/html' };
    if (this.cookies.size) headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body;
    if (form) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this._remember(res);
    log(this.mode, `browser ${method} ${new URL(url).pathname} -> ${res.status}`);
    return res;
  }

  // Walks the authorization URL like a user would: sign in, approve, stop at the redirect URI.
  async authorize(authorizationUrl, redirectUrl) {
    const target = new URL(redirectUrl);
    let res = await this.request(authorizationUrl);
    let url = new URL(authorizationUrl);
    for (let step = 0; step < 10; step++) {
      if (res.status >= 300 && res.status < 400) {
        const location = new URL(res.headers.get('location'), url);
        await res.body?.cancel();
        if (location.origin === target.origin && location.pathname === target.pathname) return location;
        url = location;
        res = await this.request(url);
        continue;
      }
      const html = await res.text();
      check(res.status === 200, `authorization page answered ${res.status}: ${html.slice(0, 300)}`);
      const login = readForm(html, 'login-form');
      if (login) {
        check(login.fields.csrf_token && login.fields.request, 'login form lacks csrf_token or request');
        url = new URL(login.action ?? '/login', url);
        res = await this.request(url, {
          method: 'POST',
          form: { username: USERNAME, password: PASSWORD, csrf_token: login.fields.csrf_token, request: login.fields.request },
        });
        check(res.status === 303, `POST /login answered ${res.status}`);
        continue;
      }
      const consent = readForm(html, 'consent-form');
      if (consent) {
        check(consent.fields.csrf_token && consent.fields.request, 'consent form lacks csrf_token or request');
        url = new URL(consent.action ?? '/consent', url);
        res = await this.request(url, {
          method: 'POST',
          form: { decision: 'approve', csrf_token: consent.fields.csrf_token, request: consent.fields.request },
        });
        check(res.status === 303, `POST /consent answered ${res.status}`);
        continue;
      }
      throw new CellError(`unexpected page at ${url.pathname}: ${html.slice(0, 300)}`);
    }
    throw new CellError('too many steps in the authorization flow');
  }
}

// ---------------------------------------------------------------------------------------------
// The OAuthClientProvider: in-memory storage, and a user agent that completes the login itself.

class InteropProvider {
  constructor({ mode, issuer, clientMetadata, clientMetadataUrl, preregisteredClient }) {
    this.mode = mode;
    this.issuer = issuer;
    this.browser = new Browser(mode);
    this._clientMetadata = clientMetadata;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this._clientInformation = preregisteredClient;
    this._tokens = undefined;
    this._tokensSavedAt = 0;
    this._codeVerifier = undefined;
    this._state = undefined;
    this.pendingCode = undefined;
    this.redirects = []; // authorization URLs the SDK sent the user to
    this.savedTokens = []; // every token set saved, in order
  }

  get redirectUrl() {
    return REDIRECT_URL;
  }

  get clientMetadata() {
    return this._clientMetadata;
  }

  state() {
    this._state = randomBytes(16).toString('hex');
    return this._state;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this._tokensSavedAt = Date.now();
    this.savedTokens.push(tokens);
    log(this.mode, `tokens saved: scope=${tokens.scope ?? '(none)'} expires_in=${tokens.expires_in} refresh=${!!tokens.refresh_token}`);
  }

  // Milliseconds until the saved access token expires, by its expires_in.
  msUntilExpiry() {
    const ttl = this._tokens?.expires_in;
    if (ttl === undefined) return undefined;
    return this._tokensSavedAt + ttl * 1000 - Date.now();
  }

  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }

  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }

  invalidateCredentials(scope) {
    log(this.mode, `SDK invalidated credentials: ${scope}`);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
  }

  async redirectToAuthorization(authorizationUrl) {
    this.redirects.push(new URL(authorizationUrl));
    log(this.mode, `authorize: client_id=${authorizationUrl.searchParams.get('client_id')} scope=${authorizationUrl.searchParams.get('scope')} resource=${authorizationUrl.searchParams.get('resource')}`);
    const back = await this.browser.authorize(authorizationUrl, this.redirectUrl);
    const p = back.searchParams;
    check(!p.get('error'), `authorization error: ${p.get('error')} ${p.get('error_description') ?? ''}`);
    check(p.get('state') === authorizationUrl.searchParams.get('state'), `state mismatch: ${p.get('state')}`);
    check(p.get('iss') === this.issuer, `iss ${p.get('iss')} is not the issuer ${this.issuer}`);
    check(p.get('code'), 'no code on the redirect');
    this.pendingCode = p.get('code');
  }

  takeCode() {
    const code = this.pendingCode;
    this.pendingCode = undefined;
    return code;
  }
}

// ---------------------------------------------------------------------------------------------
// A fetch that records what the SDK sends, so each cell can verify the protocol steps taken.

function observingFetch(mode, tokenEndpointRef) {
  const events = [];
  const f = async (url, init = {}) => {
    const u = new URL(url instanceof Request ? url.url : String(url));
    const method = (init.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers);
    const ev = { method, url: u.href, path: u.pathname };
    if (tokenEndpointRef.value && u.href === tokenEndpointRef.value && init.body instanceof URLSearchParams) {
      const authz = headers.get('authorization') ?? '';
      ev.token = {
        grant_type: init.body.get('grant_type'),
        basic: authz.startsWith('Basic '),
        secret_in_body: init.body.has('client_secret'),
        client_id_in_body: init.body.get('client_id'),
        resource: init.body.get('resource'),
      };
    }
    if (u.pathname.endsWith('/register') && method === 'POST' && typeof init.body === 'string') {
      ev.register = JSON.parse(init.body);
    }
    if (method === 'POST' && typeof init.body === 'string' && init.body.startsWith('{"') && headers.get('content-type') === 'application/json' && !ev.register) {
      try {
        ev.rpc = JSON.parse(init.body).method;
      } catch {
        // not JSON-RPC
      }
    }
    const res = await fetch(url, init);
    ev.status = res.status;
    if (res.status === 401 || res.status === 403) ev.wwwAuthenticate = res.headers.get('www-authenticate');
    events.push(ev);
    log(mode, `sdk ${method} ${u.pathname}${ev.rpc ? ` (${ev.rpc})` : ''}${ev.token ? ` grant_type=${ev.token.grant_type}` : ''} -> ${res.status}${ev.wwwAuthenticate ? ` [${ev.wwwAuthenticate}]` : ''}`);
    return res;
  };
  return { fetch: f, events };
}

// ---------------------------------------------------------------------------------------------
// MCP steps.

function jsonResult(result, name) {
  check(!result.isError, `${name} returned an error: ${JSON.stringify(result.content)}`);
  const text = result.content?.find(c => c.type === 'text')?.text;
  check(typeof text === 'string', `${name} returned no text content`);
  try {
    return JSON.parse(text);
  } catch {
    throw new CellError(`${name} text is not JSON: ${text.slice(0, 200)}`);
  }
}

function newTransport(ctx) {
  return new StreamableHTTPClientTransport(new URL(ctx.rsUrl), { authProvider: ctx.provider, fetch: ctx.obs.fetch });
}

function newClient(ctx) {
  if (!ctx.gateway) return new Client({ name: 'mcp-stack-interop', version: SDK_VERSION });
  // The client's model, for the upstream's sampling requests: always "42".
  const client = new Client({ name: 'mcp-stack-interop', version: SDK_VERSION }, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    role: 'assistant',
    content: { type: 'text', text: '42' },
    model: 'interop',
  }));
  return client;
}

// server-everything behind the gateway: its tools (progress; sampling answered above), a
// resource and a prompt; what the policy leaves out is not listed.
async function exerciseEverything(ctx, client) {
  let names = [];
  for (let i = 0; i < 50; i++) {
    names = (await client.listTools()).tools.map(t => t.name);
    if (names.includes('trigger-sampling-request')) break;
    await new Promise(r => setTimeout(r, 100));
  }
  check(names.includes('echo') && names.includes('trigger-sampling-request'), `tools: ${names.join(', ')}`);
  check(!names.includes('get-env'), 'get-env is outside the policy but listed');
  const echo = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
  check(echo.content[0].text === 'Echo: hi', `echo: ${JSON.stringify(echo)}`);
  const progress = [];
  await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
    undefined,
    { onprogress: p => progress.push(p.progress) },
  );
  for (let i = 0; i < 40 && progress.length < 3; i++) await new Promise(r => setTimeout(r, 50));
  check(progress.length >= 3, `progress notifications: ${JSON.stringify(progress)}`);
  const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'the answer?', maxTokens: 10 } });
  check(JSON.stringify(sampled).includes('42'), `sampling answer not relayed: ${JSON.stringify(sampled).slice(0, 300)}`);
  const resources = (await client.listResources()).resources.filter(r => r.uri.startsWith('demo://resource/static/'));
  check(resources.length > 0, 'no static resources');
  const read = await client.readResource({ uri: resources[0].uri });
  check(read.contents.length > 0, 'empty resource');
  const prompt = await client.getPrompt({ name: 'simple-prompt' });
  check(prompt.messages.length > 0, 'empty prompt');
  // A long call aborted by the application: the SDK sends notifications/cancelled, which the
  // gateway passes on; the session carries on.
  let aborted = false;
  await client
    .callTool({ name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 20 } }, undefined, { signal: AbortSignal.timeout(800) })
    .catch(() => { aborted = true; });
  check(aborted, 'the long call ended before it was aborted');
  const after = await client.callTool({ name: 'echo', arguments: { message: 'after' } });
  check(after.content[0].text === 'Echo: after', `echo after the cancelled call: ${JSON.stringify(after)}`);
  log(ctx.mode, `server-everything: ${names.length} tools, ${progress.length} progress, sampling, resource, prompt, a long call cancelled`);
}

// Connects; when the SDK sends the user to log in, completes it with finishAuth() and reconnects
// on a new transport, the way the SDK's own OAuth example does.
async function connectAuthorized(ctx) {
  const first = newTransport(ctx);
  const client1 = newClient(ctx);
  try {
    await client1.connect(first);
    return { client: client1, transport: first };
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    log(ctx.mode, `connect: ${e.constructor.name} (authorization needed)`);
  }
  const code = ctx.provider.takeCode();
  check(code, 'the SDK reported Unauthorized without sending the user to authorize');
  await first.finishAuth(code);
  await client1.close().catch(() => {});
  const transport = newTransport(ctx);
  const client = newClient(ctx);
  await client.connect(transport);
  return { client, transport };
}

async function exerciseTools(ctx, client) {
  const tools = await client.listTools();
  const names = tools.tools.map(t => t.name);
  for (const n of ['get_user_profile', 'list_secure_notes', 'get_api_usage', 'create_secure_note']) {
    check(names.includes(n), `tools/list lacks ${n}: ${names.join(', ')}`);
  }
  const profile = jsonResult(await client.callTool({ name: 'get_user_profile', arguments: {} }), 'get_user_profile');
  check(JSON.stringify(profile).includes(USERNAME), `get_user_profile does not name ${USERNAME}: ${JSON.stringify(profile)}`);
  log(ctx.mode, 'get_user_profile ok');
}

async function createNote(ctx, client) {
  const title = `interop ${ctx.mode}`;
  const note = jsonResult(
    await client.callTool({ name: 'create_secure_note', arguments: { title, content: `written by typescript-sdk ${SDK_VERSION}` } }),
    'create_secure_note',
  );
  check(JSON.stringify(note).includes(title), `create_secure_note result does not carry the title: ${JSON.stringify(note)}`);
  log(ctx.mode, 'create_secure_note ok');
}

async function readProfile(ctx, client) {
  const res = await client.readResource({ uri: 'user://profile' });
  const text = res.contents?.[0]?.text;
  check(typeof text === 'string' && text.includes(USERNAME), `user://profile does not name ${USERNAME}: ${JSON.stringify(res).slice(0, 300)}`);
  log(ctx.mode, 'resources/read user://profile ok');
}

// Waits out the access token, calls again and checks the SDK refreshed (not re-authorized).
async function checkRefresh(ctx, client) {
  const p = ctx.provider;
  const before = p.tokens();
  check(before?.refresh_token, 'no refresh token was issued');
  const wait = p.msUntilExpiry();
  check(wait !== undefined, 'the token response has no expires_in, so expiry cannot be awaited');
  check(wait <= MAX_TOKEN_WAIT_S * 1000, `access token lives ${Math.round(wait / 1000)} s; start the stack with a short AUTHZ_ACCESS_TOKEN_TTL (e.g. 6) to check refresh`);
  log(ctx.mode, `waiting ${Math.ceil((wait + 1500) / 1000)} s for the access token to expire`);
  await sleep(Math.max(0, wait) + 1500);
  const redirectsBefore = p.redirects.length;
  const tokenCallsBefore = ctx.obs.events.filter(e => e.token).length;
  const usage = jsonResult(await client.callTool({ name: 'get_api_usage', arguments: {} }), 'get_api_usage');
  const after = p.tokens();
  check(after && after.access_token !== before.access_token, 'the call succeeded without a new access token (expired token accepted?)');
  check(p.redirects.length === redirectsBefore, 'the SDK sent the user to authorize again instead of refreshing');
  const grants = ctx.obs.events.filter(e => e.token).slice(tokenCallsBefore).map(e => e.token.grant_type);
  check(grants.length > 0 && grants.every(g => g === 'refresh_token'), `expected refresh_token grants, saw: ${grants.join(', ') || 'none'}`);
  const rejected = ctx.obs.events.find(e => e.status === 401 && /invalid_token/.test(e.wwwAuthenticate ?? '') && e.path === new URL(ctx.rsUrl).pathname);
  check(rejected, 'the resource server never rejected the expired token');
  log(ctx.mode, `refresh ok (get_api_usage after refresh: ${JSON.stringify(usage).slice(0, 80)})`);
}

function checkClientAuth(ctx, expected) {
  const calls = ctx.obs.events.filter(e => e.token);
  check(calls.length > 0, 'no token endpoint call was observed');
  for (const { token: t } of calls) {
    const used = t.basic ? 'client_secret_basic' : t.secret_in_body ? 'client_secret_post' : t.client_id_in_body ? 'none' : 'unknown';
    check(used === expected, `${t.grant_type} token request used client auth ${used}, expected ${expected}`);
    check(t.resource === ctx.resource, `${t.grant_type} token request resource=${t.resource}, expected ${ctx.resource}`);
  }
}

function checkDiscovery(ctx) {
  const ev = ctx.obs.events;
  const first = ev.find(e => e.path === new URL(ctx.rsUrl).pathname);
  check(first?.status === 401, `first MCP request answered ${first?.status}, expected 401`);
  check(ev.some(e => e.path.startsWith('/.well-known/oauth-protected-resource') && e.status === 200), 'protected resource metadata was not fetched');
  check(ev.some(e => e.path.startsWith('/.well-known/oauth-authorization-server') && e.status === 200), 'authorization server metadata was not fetched');
}

// ---------------------------------------------------------------------------------------------
// Cells.

function baseMetadata(mode, authMethod, extra = {}) {
  return {
    client_name: `typescript-sdk ${SDK_VERSION} interop (${mode})`,
    redirect_uris: [REDIRECT_URL],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: authMethod,
    ...extra,
  };
}

async function fullFlow(ctx) {
  const { client } = await connectAuthorized(ctx);
  ctx.client = client;
  checkDiscovery(ctx);
  if (ctx.gateway) return exerciseEverything(ctx, client);
  await exerciseTools(ctx, client);
  await createNote(ctx, client);
  await readProfile(ctx, client);
  await checkRefresh(ctx, client);
}

async function dcrCell(ctx, authMethod) {
  ctx.provider = new InteropProvider({ mode: ctx.mode, issuer: ctx.issuer, clientMetadata: baseMetadata(ctx.mode, authMethod) });
  await fullFlow(ctx);
  const reg = ctx.obs.events.filter(e => e.register);
  check(reg.length === 1 && reg[0].status === 201, `expected one successful registration, saw ${reg.map(r => r.status).join(', ') || 'none'}`);
  check(reg[0].register.token_endpoint_auth_method === authMethod, 'registration did not carry the requested token_endpoint_auth_method');
  const info = ctx.provider.clientInformation();
  check(authMethod === 'none' ? !info.client_secret : !!info.client_secret, `client_secret ${info.client_secret ? 'present' : 'absent'} for ${authMethod}`);
  checkClientAuth(ctx, authMethod);
}

async function preregisteredCell(ctx) {
  ctx.provider = new InteropProvider({
    mode: ctx.mode,
    issuer: ctx.issuer,
    clientMetadata: baseMetadata(ctx.mode, 'none'),
    preregisteredClient: { client_id: PREREGISTERED_CLIENT_ID },
  });
  await fullFlow(ctx);
  check(!ctx.obs.events.some(e => e.register), 'the SDK registered although client information was present');
  check(ctx.provider.redirects.every(u => u.searchParams.get('client_id') === PREREGISTERED_CLIENT_ID), 'authorization used another client_id');
  checkClientAuth(ctx, 'none');
}

// Serves a client ID metadata document on a loopback port; the document's URL is the client_id.
// Over https when INTEROP_CIMD_CERT and INTEROP_CIMD_KEY name a certificate for 127.0.0.1 that the
// stack was started trusting; over http (which the stack fetches with AUTHZ_CIMD_ALLOW_LOOPBACK)
// otherwise.
async function serveMetadataDocument(mode) {
  const hits = [];
  let doc;
  const tls = CIMD_CERT && CIMD_KEY ? { cert: readFileSync(CIMD_CERT), key: readFileSync(CIMD_KEY) } : undefined;
  const handler = (req, res) => {
    hits.push(req.url);
    log(mode, `metadata document requested: ${req.method} ${req.url}`);
    if (req.url !== '/oauth/client-metadata.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(doc));
  };
  const server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}/oauth/client-metadata.json`;
  doc = {
    client_id: url,
    client_name: `typescript-sdk ${SDK_VERSION} interop (cimd)`,
    redirect_uris: [REDIRECT_URL],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
  return { url, doc, hits, close: () => new Promise(r => server.close(r)) };
}

async function cimdCell(ctx) {
  const served = await serveMetadataDocument(ctx.mode);
  try {
    ctx.provider = new InteropProvider({
      mode: ctx.mode,
      issuer: ctx.issuer,
      clientMetadata: { ...served.doc, client_id: undefined },
      clientMetadataUrl: served.url,
    });
    try {
      await fullFlow(ctx);
    } catch (e) {
      // The SDK refuses any clientMetadataUrl that is not https before contacting the server
      // (isHttpsUrl() in client/auth.js); that is the document served over plain http (no
      // INTEROP_CIMD_CERT); over https the SDK's own CIMD flow runs and any error fails the cell.
      if (e instanceof InvalidClientMetadataError && /HTTPS/i.test(e.message) && served.url.startsWith('http:') && ctx.provider.redirects.length === 0) {
        throw new Unsupported(
          `SDK ${SDK_VERSION} accepts only an https clientMetadataUrl (auth() throws InvalidClientMetadataError: "${e.message.replace(/, got: .*$/, '')}"); ` +
            'the document can only be served over http on loopback here, so the SDK never sends the URL client_id',
        );
      }
      throw e;
    }
    check(!ctx.obs.events.some(e => e.register), 'the SDK registered instead of using the metadata document URL');
    check(ctx.provider.redirects.length > 0 && ctx.provider.redirects.every(u => u.searchParams.get('client_id') === served.url), 'authorization did not use the document URL as client_id');
    check(served.hits.includes('/oauth/client-metadata.json'), 'the authorization server never fetched the metadata document');
    checkClientAuth(ctx, 'none');
    const foreign = ctx.obs.events.filter(e => e.token && e.token.client_id_in_body !== served.url);
    check(foreign.length === 0, `token requests with client_id ${foreign.map(e => e.token.client_id_in_body).join(', ')}, not the document URL`);
  } finally {
    await served.close();
  }
}

async function stepUpCell(ctx) {
  ctx.provider = new InteropProvider({
    mode: ctx.mode,
    issuer: ctx.issuer,
    clientMetadata: baseMetadata(ctx.mode, 'none', { scope: 'mcp:read' }),
  });
  const p = ctx.provider;
  // The 401 challenge asks for every scope and the SDK prefers it over clientMetadata.scope, so a
  // read-only token is obtained up front through auth() with an explicit scope.
  const opts = { serverUrl: ctx.rsUrl, fetchFn: ctx.obs.fetch };
  check((await auth(p, { ...opts, scope: 'mcp:read' })) === 'REDIRECT', 'auth() did not send the user to authorize');
  check((await auth(p, { ...opts, authorizationCode: p.takeCode() })) === 'AUTHORIZED', 'auth() did not redeem the code');
  const granted = (p.tokens().scope ?? '').split(' ');
  check(granted.includes('mcp:read') && !granted.includes('mcp:write'), `expected a read-only token, got scope "${p.tokens().scope}"`);

  const { client, transport } = await connectAuthorized(ctx);
  ctx.client = client;
  await exerciseTools(ctx, client);

  const redirectsBefore = p.redirects.length;
  const eventsBefore = ctx.obs.events.length;
  try {
    await createNote(ctx, client);
  } catch (e) {
    const later = ctx.obs.events.slice(eventsBefore);
    const challenged = later.find(ev => ev.status === 403 && /insufficient_scope/.test(ev.wwwAuthenticate ?? ''));
    if (e instanceof UnauthorizedError && p.redirects.length > redirectsBefore && p.pendingCode) {
      // The SDK re-authorized with the wider scope: finish it as the SDK expects and retry.
      log(ctx.mode, `step-up re-authorization requested scope=${p.redirects.at(-1).searchParams.get('scope')}`);
      await transport.finishAuth(p.takeCode());
      await createNote(ctx, client);
    } else if (
      challenged &&
      p.redirects.length === redirectsBefore &&
      later.some(ev => ev.token?.grant_type === 'refresh_token') &&
      /403 after trying upscoping/.test(String(e.message))
    ) {
      throw new Unsupported(
        `SDK ${SDK_VERSION}: on 403 insufficient_scope (${challenged.wwwAuthenticate.match(/scope="[^"]*"/)?.[0]}) auth() uses the held refresh_token ` +
          '(refresh_token grant without scope, so the AS rightly keeps mcp:read) instead of re-authorizing; the retry gets the same 403 and the ' +
          'transport stops with "Server returned 403 after trying upscoping" (typescript-sdk issue #2255)',
      );
    } else {
      throw e;
    }
  }
  const scope = (p.tokens().scope ?? '').split(' ');
  check(scope.includes('mcp:write') && scope.includes('mcp:read'), `after step-up the token has scope "${p.tokens().scope}"`);
  await readProfile(ctx, client);
  await checkRefresh(ctx, client);
}

async function runCell(mode, asUrl, rsUrl, preflight) {
  const tokenEndpointRef = { value: preflight.tokenEndpoint };
  const ctx = {
    mode, issuer: asUrl, rsUrl, resource: preflight.resource, obs: observingFetch(mode, tokenEndpointRef),
    gateway: GATEWAY || mode.startsWith('gateway-'),
  };
  if (preflight.error) return { result: 'fail', detail: preflight.error };
  const body = {
    'dcr-public': () => dcrCell(ctx, 'none'),
    'dcr-client_secret_basic': () => dcrCell(ctx, 'client_secret_basic'),
    'dcr-client_secret_post': () => dcrCell(ctx, 'client_secret_post'),
    cimd: () => cimdCell(ctx),
    preregistered: () => preregisteredCell(ctx),
    'step-up': () => stepUpCell(ctx),
    'gateway-stdio': () => dcrCell(ctx, 'none'),
    'gateway-http': () => dcrCell(ctx, 'none'),
  }[mode];
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CellError(`timed out after ${CELL_TIMEOUT_MS / 1000} s`)), CELL_TIMEOUT_MS);
  });
  try {
    await Promise.race([body(), timeout]);
    return { result: 'pass', detail: '' };
  } catch (e) {
    if (e instanceof Unsupported) return { result: 'unsupported', detail: e.message };
    log(mode, e.stack ?? e);
    return { result: 'fail', detail: `${e.constructor?.name ?? 'Error'}: ${e.message}` };
  } finally {
    clearTimeout(timer);
    await ctx.client?.close().catch(() => {});
  }
}

// What the checks compare against: the resource indicator the resource server advertises (the
// SDK must send it) and the token endpoint (to recognise token requests). Unreachable servers
// fail every cell rather than crash, so each cell still reports.
async function readMetadata(asUrl, rsUrl) {
  try {
    const prmUrl = new URL(`/.well-known/oauth-protected-resource${new URL(rsUrl).pathname}`, rsUrl);
    const prmRes = await fetch(prmUrl);
    check(prmRes.ok, `${prmUrl} answered ${prmRes.status}`);
    const prm = await prmRes.json();
    if (!prm.authorization_servers?.includes(asUrl)) {
      console.error(`warning: ${prmUrl} names authorization servers ${JSON.stringify(prm.authorization_servers)}, not ${asUrl}`);
    }
    const asMetaUrl = new URL('/.well-known/oauth-authorization-server', asUrl);
    const asRes = await fetch(asMetaUrl);
    check(asRes.ok, `${asMetaUrl} answered ${asRes.status}`);
    return { resource: prm.resource, tokenEndpoint: (await asRes.json()).token_endpoint };
  } catch (e) {
    const cause = e.cause?.code ? ` (${e.cause.code})` : '';
    return { error: `metadata not reachable: ${e.message}${cause}` };
  }
}

async function main() {
  const [asArg, rsArg, ...modeArgs] = process.argv.slice(2);
  if (!asArg || !rsArg) {
    console.error('usage: node client.mjs <authorization-server-url> <mcp-url> [mode ...]');
    process.exit(2);
  }
  const asUrl = asArg.replace(/\/$/, '');
  const rsUrl = rsArg;
  const modes = modeArgs.length ? modeArgs : DEFAULT_MODES;
  for (const m of modes) {
    if (!ALL_MODES.includes(m)) {
      console.error(`unknown mode ${m}; modes: ${ALL_MODES.join(' ')}`);
      process.exit(2);
    }
  }
  const preflight = await readMetadata(asUrl, rsUrl);
  let failed = false;
  for (const mode of modes) {
    const started = Date.now();
    const { result, detail } = await runCell(mode, asUrl, rsUrl, preflight);
    log(mode, `${result} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    failed ||= result === 'fail';
    console.log(JSON.stringify({ client: 'typescript-sdk', version: SDK_VERSION, mode, result, detail }));
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
