// MCP Inspector (the official web UI, pinned in package.json) against the real servers,
// driven in Debian's Chromium through playwright-core; no browser is downloaded.
//
// The Inspector is started here (its launcher's --web mode, with a session token), then
// its UI is used as a person would: add a Streamable HTTP server with our MCP URL,
// connect, sign in and approve on our pages, then list and call tools, read a resource
// and get a prompt. Then its OAuth Settings: a narrower scope, and the step-up it offers
// on 403 insufficient_scope. Last, what a browser-side client would need of our CORS,
// sent from the Inspector's own origin.
//
// Usage: node inspector.mjs <issuer> <resource> <screenshot-dir>
// Output: one JSON line per check (and per screenshot) on stdout; diagnostics on stderr;
// exit 1 on any failure.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, createWriteStream } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [issuerArg, resourceArg, shotArg] = process.argv.slice(2);
if (!issuerArg || !resourceArg || !shotArg) {
  console.error('usage: node inspector.mjs <issuer> <resource> <screenshot-dir>');
  process.exit(2);
}
const issuer = issuerArg.replace(/\/+$/, '');
const resource = resourceArg;
const asOrigin = new URL(issuer).origin;
const rsOrigin = new URL(resource).origin;
const shotDir = resolve(shotArg);
mkdirSync(shotDir, { recursive: true });

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, 'node_modules', '@modelcontextprotocol', 'inspector');
const VERSION = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
const LAUNCHER = join(pkgDir, 'clients', 'launcher', 'build', 'index.js');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const USERNAME = process.env.BROWSER_USERNAME || 'testuser';
const PASSWORD = process.env.BROWSER_PASSWORD || 'testpass';
const SERVER_ID = 'mcp-stack';
const NOTE_TITLE = `inspector-${randomBytes(4).toString('hex')}`;
const FOCUS = 'interop';
// Everything waits at most this long for one step; the whole run is bounded below.
const STEP_MS = 20_000;
const OAUTH_MS = 30_000;
const RUN_MS = Number(process.env.INSPECTOR_RUN_TIMEOUT_MS || 300_000);

let failures = 0;
function report(check, ok, detail = '') {
  if (!ok) failures++;
  console.log(JSON.stringify({ suite: 'inspector', check, result: ok ? 'pass' : 'fail', detail: String(detail) }));
  return ok;
}
const clip = (s, n = 300) => { s = String(s).replace(/\s+/g, ' ').trim(); return s.length > n ? `${s.slice(0, n)}…` : s; };
const log = (...a) => console.error('[inspector]', ...a);

async function shot(page, name) {
  const path = join(shotDir, name);
  try {
    await page.screenshot({ path, animations: 'disabled' });
    console.log(JSON.stringify({ suite: 'inspector', screenshot: path }));
  } catch (e) {
    log(`screenshot ${name} failed: ${e.message}`);
  }
  return path;
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

// ---------------------------------------------------------------- the Inspector itself
const home = mkdtempSync(join(tmpdir(), 'mcp-inspector-'));
const token = randomBytes(24).toString('hex');
const [uiPort, sandboxPort, appPort] = [await freePort(), await freePort(), await freePort()];
const inspectorLog = join(home, 'inspector.log');
const logStream = createWriteStream(inspectorLog);
let banner = '';
// The Inspector needs Node >= 22.19 (its package.json engines); run.sh runs this file
// with the Node that package.json pins, so process.execPath is that one.
const child = spawn(process.execPath, [LAUNCHER, '--web'], {
  env: {
    PATH: process.env.PATH,
    HOME: home, // nothing read from or written to the real ~/.mcp-inspector
    MCP_STORAGE_DIR: join(home, 'storage'),
    MCP_INSPECTOR_SECRET_STORE: 'memory', // no keychain here; tokens die with the process
    MCP_AUTO_OPEN_ENABLED: 'false',
    CLIENT_PORT: String(uiPort), // classic 6274: UI and its API on one port
    MCP_SANDBOX_PORT: String(sandboxPort), // classic 6275: MCP Apps sandbox
    MCP_APP_ORIGIN_PORT: String(appPort), // classic 6278
    MCP_INSPECTOR_API_TOKEN: token, // v1's MCP_PROXY_AUTH_TOKEN still works as a fallback
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
child.stdout.on('data', (d) => { banner += d; logStream.write(d); });
child.stderr.on('data', (d) => { banner += d; logStream.write(d); });
let childExited = null;
child.on('exit', (code, sig) => { childExited = `exit ${code ?? sig}`; });

let browser;
async function cleanup() {
  try { await browser?.close(); } catch { /* already gone */ }
  if (childExited === null) {
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
    if (childExited === null) child.kill('SIGKILL');
  }
  logStream.end();
}
const watchdog = setTimeout(async () => {
  report('run-within-time-limit', false, `still running after ${RUN_MS} ms`);
  await cleanup();
  process.exit(1);
}, RUN_MS);

async function waitForBanner() {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (/Auth token: \S+/.test(banner) && /up and running at:\s*\S+/.test(banner)) return;
    if (childExited !== null) throw new Error(`the Inspector stopped (${childExited}): ${clip(banner, 600)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no start banner within 60 s: ${clip(banner, 600)}`);
}

// ---------------------------------------------------------------- what the page sends
const ours = (u) => { try { const o = new URL(u).origin; return o === asOrigin || o === rsOrigin; } catch { return false; } };
const toOurs = []; // every request the browser itself sent to the AS or the RS
const ourFailures = []; // failed requests, CORS console errors, error answers from our servers
const backendFetches = []; // what the UI asked its backend to fetch (/api/fetch): the OAuth traffic
const navigations = [];
let consoleLines = [];

function watch(page, uiOrigin) {
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  page.on('console', (m) => {
    const text = m.text();
    consoleLines.push(`${m.type()}: ${text}`);
    if (/CORS|Access-Control/i.test(text) && (text.includes(asOrigin) || text.includes(rsOrigin))) {
      ourFailures.push(`console: ${text}`);
    }
  });
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e}`));
  page.on('request', (r) => {
    if (ours(r.url())) toOurs.push({ method: r.method(), url: r.url(), type: r.resourceType(), nav: r.isNavigationRequest() });
  });
  page.on('requestfailed', (r) => {
    const err = r.failure()?.errorText || '';
    // A navigation away from a page aborts its pending requests (ERR_ABORTED); that is
    // no error of ours.
    if (ours(r.url()) && err !== 'net::ERR_ABORTED') ourFailures.push(`${r.method()} ${r.url()} (${r.resourceType()}): ${err}`);
  });
  page.on('response', async (resp) => {
    const req = resp.request();
    if (ours(resp.url()) && resp.status() >= 400) {
      ourFailures.push(`${req.method()} ${resp.url()} (${req.resourceType()}): HTTP ${resp.status()}`);
    }
    if (resp.url().startsWith(`${uiOrigin}/api/fetch`) && req.method() === 'POST') {
      let asked = {};
      let answer = {};
      try { asked = JSON.parse(req.postData() || '{}'); } catch (e) { log(`/api/fetch body: ${e.message}`); }
      try { answer = await resp.json(); } catch (e) { log(`/api/fetch answer for ${asked.url}: ${e.message}`); }
      const grant = typeof asked.body === 'string' ? new URLSearchParams(asked.body).get('grant_type') : null;
      backendFetches.push({ method: asked.method || 'GET', url: asked.url, grant, status: answer.status, body: answer.body });
    }
  });
}

// ---------------------------------------------------------------- playing the person
// Our pages: the login form (unless the AS session cookie is still there), the consent
// form (unless this client already holds consent for the scope), then the redirect back
// to the Inspector's /oauth/callback, which may come at once from /authorize.
async function signInAndApprove(page, uiOrigin, navStart) {
  const seen = { login: false, consent: false, consentText: '' };
  const callback = () => navigations.slice(navStart).find((u) => u.startsWith(`${uiOrigin}/oauth/callback`));
  const deadline = Date.now() + OAUTH_MS;
  while (Date.now() < deadline) {
    if (callback()) {
      await page.waitForLoadState('load');
      return { ...seen, callback: callback() };
    }
    if (await page.locator('form#login-form').isVisible().catch(() => false)) {
      if (seen.login) throw new Error('the login page came back after signing in');
      seen.login = true;
      await page.fill('#username', USERNAME);
      await page.fill('#password', PASSWORD);
      await page.locator('form#login-form').getByRole('button', { name: 'Sign in' }).click();
    } else if (!seen.consent && await page.locator('form#consent-form').isVisible().catch(() => false)) {
      seen.consent = true;
      seen.consentText = clip(await page.locator('body').innerText(), 400);
      await page.locator('form#consent-form button[value=approve]').click();
    }
    await page.waitForTimeout(200);
  }
  throw new Error(`no redirect back to ${uiOrigin}/oauth/callback within ${OAUTH_MS} ms; at ${page.url()}`);
}

// Runs `start` (a click that makes the Inspector redirect to our /authorize), then plays
// the person and waits for the server to show as connected.
async function throughOAuth(page, uiOrigin, start) {
  const navStart = navigations.length;
  const authorizing = page.waitForRequest((r) => r.url().startsWith(`${issuer}/authorize`) && r.isNavigationRequest(), { timeout: OAUTH_MS });
  await start();
  const authorize = new URL((await authorizing).url());
  const seen = await signInAndApprove(page, uiOrigin, navStart);
  await waitConnected(page);
  return { authorize, ...seen };
}

const serverCard = (page) => page.locator('.mantine-Card-root').filter({ has: page.getByText(SERVER_ID, { exact: true }) });
// The header's segmented control (Servers / Tools / Prompts / Resources) exists only
// while a server is connected.
async function tab(page, name) {
  await page.locator('.mantine-SegmentedControl-root label').filter({ hasText: new RegExp(`^${name}$`) }).first().click();
}
async function toServers(page) {
  const nav = page.locator('.mantine-SegmentedControl-root label').filter({ hasText: /^Servers$/ });
  // It goes away while we look when the server disconnects.
  if (await nav.count()) await nav.first().click({ timeout: 3000 }).catch(() => {});
  await serverCard(page).waitFor();
}
// The header's disconnect button is there only while a server is connected; the UI may
// come back from the OAuth redirect on another tab than Servers.
async function waitConnected(page) {
  await page.getByRole('button', { name: 'Disconnect from server' }).waitFor({ timeout: OAUTH_MS });
  await toServers(page);
  await serverCard(page).getByText('Connected', { exact: true }).waitFor();
}

// Switches the server on; the OAuth flow follows.
async function connectThroughOAuth(page, uiOrigin) {
  await toServers(page);
  // The switch's input is visually hidden; a person clicks its track.
  return throughOAuth(page, uiOrigin, () => serverCard(page).locator('.mantine-Switch-track').click());
}

async function executeTool(page, name, args = {}) {
  await tab(page, 'Tools');
  await page.getByRole('button', { name, exact: true }).click();
  for (const [label, value] of Object.entries(args)) {
    await page.getByLabel(new RegExp(`^${label}( \\*)?$`)).fill(value);
  }
  await page.getByRole('button', { name: 'Execute Tool' }).click();
}
// The Results panel of the tool just executed, once `done` says it is complete.
async function resultText(page, done) {
  const panel = page.locator('.mantine-Paper-root').filter({ has: page.getByText('Results', { exact: true }) }).last();
  await panel.waitFor();
  const deadline = Date.now() + STEP_MS;
  let text = '';
  while (Date.now() < deadline) {
    text = (await panel.innerText()).replace(/\s+/g, ' ');
    if (done(text)) break;
    await page.waitForTimeout(200);
  }
  return text;
}

const byUrl = (pred) => backendFetches.filter((f) => f.url && pred(f.url));

// ---------------------------------------------------------------- CORS as a browser client needs it
// The preflight our servers answer, replayed outside the browser to show their answer.
function preflight(url, origin, method, headers) {
  return new Promise((ok) => {
    const req = httpRequest(url, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': method, ...(headers ? { 'Access-Control-Request-Headers': headers } : {}) },
      timeout: 5000,
    }, (res) => {
      res.resume();
      const acl = Object.entries(res.headers).filter(([k]) => k.startsWith('access-control-')).map(([k, v]) => `${k}: ${v}`);
      ok(`OPTIONS → ${res.statusCode} ${acl.join('; ') || '(no Access-Control-* headers)'}`);
    });
    req.on('error', (e) => ok(`OPTIONS failed: ${e.message}`));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function corsProbe(page, uiOrigin, name, spec, expect) {
  const before = consoleLines.length;
  const got = await page.evaluate(async ({ url, method, headers, body, read }) => {
    try {
      const r = await fetch(url, { method, headers, body, mode: 'cors', credentials: 'omit' });
      const text = await r.text();
      return { ok: true, status: r.status, header: read ? r.headers.get(read) : null, text: text.slice(0, 300) };
    } catch (e) {
      return { ok: false, error: String(e) };
    }
  }, spec);
  const blocked = consoleLines.slice(before).filter((l) => /CORS|Access-Control/i.test(l));
  const sentHeaders = Object.keys(spec.headers || {}).map((h) => h.toLowerCase()).join(', ');
  // Fetch spec: a GET/POST with only safelisted headers and a form, text or multipart
  // body goes without a preflight; its answer must still carry Access-Control-Allow-Origin.
  const simple = ['GET', 'HEAD', 'POST'].includes(spec.method) && Object.entries(spec.headers || {}).every(([k, v]) =>
    ['accept', 'accept-language', 'content-language'].includes(k.toLowerCase())
      || (k.toLowerCase() === 'content-type' && /^(application\/x-www-form-urlencoded|multipart\/form-data|text\/plain)\b/.test(v)));
  const answer = simple ? 'none (a simple request; the answer was readable, so it allowed this origin)'
    : await preflight(spec.url, uiOrigin, spec.method, sentHeaders);
  if (!got.ok) {
    ourFailures.push(`probe ${name}: ${blocked.join(' | ') || got.error}`);
    return report(`cors-${name}`, false,
      `${spec.method} ${spec.url} from ${uiOrigin} with [${sentHeaders}] blocked: ${clip(blocked.join(' | ') || got.error, 400)}; our preflight answer: ${simple ? await preflight(spec.url, uiOrigin, spec.method, sentHeaders) : answer}`);
  }
  const problem = expect(got);
  return report(`cors-${name}`, !problem,
    `${spec.method} ${spec.url} from ${uiOrigin} → ${got.status}${spec.read ? ` ${spec.read}: ${got.header ?? '(not readable)'}` : ''}${problem ? ` — ${problem}` : ''}; preflight${simple ? '' : ` with [${sentHeaders}]`}: ${answer}`);
}

// ---------------------------------------------------------------- the run
class Skip extends Error {}
let step = 'start-inspector';
let page;
try {
  await waitForBanner();
  const shownUrl = banner.match(/up and running at:\s*(\S+)/)[1];
  const shownToken = banner.match(/Auth token: (\S+)/)[1];
  const uiOrigin = new URL(shownUrl).origin;
  const uiUrl = `${uiOrigin}/?MCP_INSPECTOR_API_TOKEN=${token}`;
  report('inspector-started', shownToken === token && uiOrigin === `http://127.0.0.1:${uiPort}`,
    `@modelcontextprotocol/inspector ${VERSION} (launcher --web): UI and its API on ${uiOrigin} (CLIENT_PORT; classic 6274), MCP Apps sandbox on ${sandboxPort} (MCP_SANDBOX_PORT; classic 6275); no separate proxy port (v1's 6277 is gone): the session token ${shownToken === token ? 'is the MCP_INSPECTOR_API_TOKEN we set' : `differs: ${shownToken}`}`);

  step = 'inspector-api-token';
  const noToken = await fetch(`${uiOrigin}/api/config`);
  const withToken = await fetch(`${uiOrigin}/api/config`, { headers: { 'x-mcp-remote-auth': `Bearer ${token}` } });
  const config = withToken.ok ? await withToken.json() : {};
  report(`inspector-version-${VERSION}`, noToken.status === 401 && withToken.ok && config.version === VERSION,
    `GET /api/config: ${noToken.status} without the token, ${withToken.status} with x-mcp-remote-auth (version ${config.version}, secrets ${config.secretStorage?.kind})`);

  step = 'launch-browser';
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: 'light' });
  context.setDefaultTimeout(STEP_MS);
  page = await context.newPage();
  watch(page, uiOrigin);
  // The UI asks Google Fonts for its typefaces; nothing outside this machine answers.
  await context.route((u) => !/^(http:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]|blob:|data:)/.test(u.href), (r) => r.abort());

  step = 'open-ui';
  await page.goto(uiUrl, { waitUntil: 'load' });
  await page.getByRole('button', { name: 'Add Servers' }).waitFor();
  // The footer renders after the Servers page's buttons: wait for it rather than count it once.
  const footer = await page.getByText(`v${VERSION}`, { exact: true }).first()
    .waitFor({ timeout: 10_000 }).then(() => true, () => false);
  report('ui-loads', footer, `Servers page with footer v${VERSION}; chromium ${browser.version()}`);

  // ---- add our server by hand: Streamable HTTP and the MCP URL
  step = 'add-server';
  await page.getByRole('button', { name: 'Add Servers' }).click();
  await page.getByText('+ Add manually', { exact: true }).click();
  const add = page.getByRole('dialog').filter({ hasText: 'Add server' });
  await add.getByLabel('Server ID').fill(SERVER_ID);
  await add.getByRole('textbox', { name: 'Transport' }).click();
  await page.locator('[role=option][value="streamable-http"]').click();
  await add.getByLabel('URL').fill(resource);
  await add.getByRole('button', { name: 'Add', exact: true }).click();
  await add.waitFor({ state: 'hidden' });
  await serverCard(page).waitFor();
  const cardText = (await serverCard(page).innerText()).replace(/\s+/g, ' ');
  report('add-server-streamable-http', cardText.includes('Streamable HTTP') && cardText.includes(resource), clip(cardText, 200));

  // ---- connect: the OAuth flow runs, our pages in the same browser page
  step = 'connect-oauth';
  const first = await connectThroughOAuth(page, uiOrigin);
  const q = first.authorize.searchParams;
  const redirectUri = `${uiOrigin}/oauth/callback`;
  report('oauth-authorize-request',
    q.get('response_type') === 'code' && q.get('redirect_uri') === redirectUri && q.get('code_challenge_method') === 'S256'
      && q.get('resource') === resource && !!q.get('client_id') && !!q.get('state'),
    `client_id=${q.get('client_id')} redirect_uri=${q.get('redirect_uri')} scope=${q.get('scope')} resource=${q.get('resource')} code_challenge_method=${q.get('code_challenge_method')}`);
  report('oauth-login-and-consent', first.login && first.consent && first.consentText.includes('MCP Inspector'),
    `login page ${first.login ? 'shown' : 'skipped'}, consent page ${first.consent ? 'shown' : 'skipped'}: ${clip(first.consentText, 200)}`);
  const cb = first.callback ? new URL(first.callback).searchParams : new URLSearchParams();
  report('oauth-callback', !!cb.get('code') && cb.get('state') === q.get('state') && cb.get('iss') === issuer,
    `back at ${redirectUri} with code, state ${cb.get('state') === q.get('state') ? 'matching' : 'NOT matching'}, iss=${cb.get('iss')}`);

  // What the UI had its backend fetch during the flow (the browser sends none of it).
  const prm = byUrl((u) => u.startsWith(`${rsOrigin}/.well-known/oauth-protected-resource`));
  const asm = byUrl((u) => u.startsWith(`${asOrigin}/.well-known/`));
  const reg = byUrl((u) => u === `${issuer}/register`);
  const tok = byUrl((u) => u === `${issuer}/token`);
  const line = (l) => l.map((f) => `${f.method} ${f.url} → ${f.status}`).join(', ') || 'none';
  report('oauth-protected-resource-metadata', prm.some((f) => f.status === 200), line(prm));
  report('oauth-authorization-server-metadata', asm.some((f) => f.status === 200), line(asm));
  let registered = {};
  try { registered = JSON.parse(reg.find((f) => f.status === 201)?.body || '{}'); } catch { /* no body */ }
  report('oauth-dynamic-registration', registered.client_id === q.get('client_id'),
    `${line(reg)}; client_id ${registered.client_id}, token_endpoint_auth_method ${registered.token_endpoint_auth_method}, scope "${registered.scope ?? ''}"`);
  report('oauth-token-exchange', tok.some((f) => f.status === 200), line(tok));
  const connectedCard = (await serverCard(page).innerText()).replace(/\s+/g, ' ');
  report('connected', /Connected/.test(connectedCard) && /MCP \d{4}-\d{2}-\d{2}/.test(connectedCard),
    `card after the redirect back: ${clip(connectedCard.replace(/ ⎘.*/, ''), 120)}`);

  step = 'connection-info';
  await serverCard(page).getByRole('button', { name: 'Connection Info' }).click();
  const info = (await page.getByRole('dialog').innerText()).replace(/\s+/g, ' ');
  const oauthInfo = info.slice(info.indexOf('OAuth Details'), info.indexOf('Access Token'));
  // Status turns to NOT AUTHORIZED once the access token has expired (a short
  // AUTHZ_ACCESS_TOKEN_TTL); the Inspector refreshes it on the next 401.
  report('connection-info-oauth-details', info.includes('Client registration Dynamic (DCR)') && info.includes(`Client ID ${q.get('client_id')}`) && info.includes('mcp:read'),
    clip(oauthInfo, 250));
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });

  // ---- tools
  step = 'tools-list';
  await tab(page, 'Tools');
  await page.getByRole('button', { name: 'get_user_profile', exact: true }).waitFor();
  const toolsHeading = await page.getByText(/^Tools \(\d+\)$/).first().innerText();
  const tools = [];
  for (const t of ['get_user_profile', 'create_secure_note', 'list_secure_notes', 'get_api_usage']) {
    if (await page.getByRole('button', { name: t, exact: true }).count()) tools.push(t);
  }
  report('tools-list', tools.length === 4, `${toolsHeading}: ${tools.join(', ')}`);
  await shot(page, 'inspector-connected-tools.png');

  step = 'tool-call';
  await executeTool(page, 'get_user_profile');
  const profile = await resultText(page, (t) => t.includes('"username"') || /error/i.test(t));
  report('tool-call-get_user_profile', profile.includes(`"username": "${USERNAME}"`), clip(profile, 250));
  await shot(page, 'inspector-tool-result.png');

  step = 'tool-call-write';
  await executeTool(page, 'create_secure_note', { title: NOTE_TITLE, content: 'written from MCP Inspector' });
  const created = await resultText(page, (t) => t.includes('"id"') || /error/i.test(t));
  report('tool-call-create_secure_note', created.includes('"id"') && created.includes(NOTE_TITLE), clip(created, 200));

  // ---- resources
  step = 'resource-read';
  await tab(page, 'Resources');
  await page.getByRole('button', { name: 'profile', exact: true }).click();
  await page.getByText('user://profile', { exact: true }).first().waitFor();
  await page.getByText(`"username": "${USERNAME}"`).first().waitFor();
  const resText = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
  report('resource-read-user-profile', resText.includes('application/json') && resText.includes(`"username": "${USERNAME}"`),
    'user://profile shown as application/json with the signed-in username');
  await shot(page, 'inspector-resource.png');

  // ---- prompts: the RS's own summarize_notes (no fixtures needed)
  step = 'prompts';
  await tab(page, 'Prompts');
  const promptsHeading = await page.getByText(/^Prompts \(\d+\)$/).first().innerText();
  await page.getByRole('button', { name: /^summarize_notes/ }).click();
  report('prompts-list', true, `${promptsHeading}: summarize_notes`);
  await page.getByLabel('focus').fill(FOCUS);
  await page.getByRole('button', { name: 'Get Prompt' }).click();
  await page.getByText(`Summarize my notes, focusing on: ${FOCUS}`).first().waitFor();
  const body = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
  // The message is rendered as Markdown: each note is a "## title" heading there.
  const message = body.slice(body.indexOf(`focusing on: ${FOCUS}`), body.indexOf(`focusing on: ${FOCUS}`) + 400);
  report('prompt-get-summarize_notes', message.includes(NOTE_TITLE),
    `prompts/get summarize_notes with focus=${FOCUS}: ${clip(message, 160)}${message.includes(NOTE_TITLE) ? '' : ` (the note ${NOTE_TITLE} written above is MISSING)`}`);
  await shot(page, 'inspector-prompt.png');

  step = 'network-panel';
  await tab(page, 'Network');
  await page.getByText(/^Requests \(\d+\)$/).first().waitFor();
  const panel = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
  report('inspector-network-log', ['DISCOVERY', 'REGISTRATION', 'TOKEN'].every((k) => panel.includes(k)),
    `the Inspector's own Network log lists ${['DISCOVERY', 'REGISTRATION', 'TOKEN'].filter((k) => panel.includes(k)).join(', ')} requests (sent by its backend)`);
  await shot(page, 'inspector-network.png');
  await tab(page, 'Protocol');

  // ---- OAuth Settings: a narrower scope, then the step-up the Inspector offers on 403
  if (process.env.INSPECTOR_STEP_UP === 'skip') throw new Skip('INSPECTOR_STEP_UP=skip');
  step = 'oauth-settings';
  await toServers(page);
  await serverCard(page).getByRole('button', { name: 'Settings' }).click();
  const settings = page.getByRole('dialog').filter({ hasText: 'Server Settings' });
  await settings.getByText('OAuth Settings', { exact: true }).click();
  const shownRedirect = await settings.getByRole('textbox', { name: 'Redirect URI' }).inputValue();
  await settings.getByLabel('Scopes', { exact: true }).fill('mcp:read');
  await settings.getByLabel('Scopes', { exact: true }).blur();
  const beforeClear = backendFetches.length;
  await settings.getByRole('button', { name: 'Clear stored OAuth state' }).click();
  await page.getByText('OAuth state cleared').first().waitFor();
  await page.waitForTimeout(1000);
  if (!backendFetches.slice(beforeClear).some((f) => f.url === `${issuer}/revoke`)) {
    // A client-side defect, named under the compatibility table (no cell depends on it).
    console.log(JSON.stringify({
      client: 'mcp-inspector', version: VERSION,
      note: 'clearing the stored OAuth state sends no revocation request although "Revoke tokens on clear" '
        + 'is on by default and the authorization server advertises revocation_endpoint: the revocation code '
        + 'looks for serverMetadata, which only the enterprise sign-in path stores (the normal flow keeps '
        + 'discoveryState.authorizationServerMetadata), so tokens stay live until they expire',
    }));
  }
  await page.keyboard.press('Escape');
  await settings.waitFor({ state: 'hidden' });
  await serverCard(page).getByText('Disconnected', { exact: true }).waitFor();
  report('oauth-settings-redirect-uri', shownRedirect === redirectUri, `Server Settings → OAuth Settings shows Redirect URI ${shownRedirect}`);

  step = 'scoped-connect';
  const fetchesBefore = backendFetches.length;
  const scoped = await connectThroughOAuth(page, uiOrigin);
  const scopedReg = backendFetches.slice(fetchesBefore).find((f) => f.url === `${issuer}/register`);
  report('oauth-settings-scope-mcp-read', scoped.authorize.searchParams.get('scope') === 'mcp:read',
    `after Clear stored OAuth state: ${scopedReg ? `registered again (${scopedReg.status})` : 'no new registration'}, /authorize scope=${scoped.authorize.searchParams.get('scope')}, consent ${scoped.consent ? 'asked' : 'skipped'}; connected`);

  step = 'step-up';
  await executeTool(page, 'create_secure_note', { title: `${NOTE_TITLE}-stepup`, content: 'needs mcp:write' });
  const stepUp = page.getByRole('dialog').filter({ hasText: 'Additional permissions required' });
  await stepUp.waitFor();
  const stepUpText = clip(await stepUp.innerText(), 300);
  report('step-up-prompt-on-insufficient-scope', stepUpText.includes('mcp:write'), stepUpText);
  await shot(page, 'inspector-step-up.png');
  const up = await throughOAuth(page, uiOrigin, () => stepUp.getByRole('button', { name: 'Authorize' }).click());
  const upAuthorize = up.authorize;
  const upSeen = up;
  const upScope = upAuthorize.searchParams.get('scope');
  const upTok = backendFetches.filter((f) => f.url === `${issuer}/token` && f.status === 200).pop();
  let granted = '';
  try { granted = JSON.parse(upTok?.body || '{}').scope || ''; } catch { /* no body */ }
  await executeTool(page, 'create_secure_note', { title: `${NOTE_TITLE}-stepup`, content: 'needs mcp:write' });
  const outcome = await Promise.race([
    stepUp.waitFor().then(() => 'asked again'),
    page.getByText('"id"').first().waitFor().then(() => 'created'),
  ]).catch((e) => `neither: ${e.message}`);
  const notGranted = await page.getByText('Additional permissions not granted').count();
  let scopedRegistered = '';
  try { scopedRegistered = JSON.parse(scopedReg?.body || '{}').scope ?? ''; } catch { /* no body */ }
  const why = outcome === 'created' ? '' : [
    notGranted ? 'the Inspector says "Additional permissions not granted"' : '',
    !granted.split(' ').includes('mcp:write') && scopedRegistered && !scopedRegistered.split(' ').includes('mcp:write')
      ? `the Inspector re-authorizes with its registration from the narrow connect (DCR scope "${scopedRegistered}"), and the AS cut the union back to the registered scope (offered_scope in authz-server/src/oauth/authorize.rs), leaving "${granted}" without a consent page`
      : '',
  ].filter(Boolean).join('; ');
  report('step-up-reauthorize-mcp-write', outcome === 'created',
    `re-authorization asked scope=${upScope} (consent ${upSeen.consent ? 'shown' : 'skipped'}), token scope "${granted}"; create_secure_note then: ${outcome}${why ? `; ${why}` : ''}`);
  if (outcome !== 'created') {
    await shot(page, 'inspector-step-up-refused.png');
    if (await stepUp.count()) await stepUp.getByRole('button', { name: 'Cancel' }).click();
  }
  step = 'done';
} catch (e) {
  if (e instanceof Skip) log(`OAuth Settings and step-up not run: ${e.message}`);
  else report(`step-${step}`, false, clip(e.message, 600));
  if (page && !(e instanceof Skip)) await shot(page, `inspector-failure-${step}.png`);
  if (page && !(e instanceof Skip)) log(`page ${page.url()}\n${clip(await page.locator('body').innerText().catch(() => ''), 1500)}`);
}

// ---- CORS: what the browser sent to our servers, then what a browser-side client would send
try {
  const uiOrigin = `http://127.0.0.1:${uiPort}`;
  const cors = toOurs.filter((r) => !r.nav && r.type !== 'document' && r.type !== 'stylesheet' && r.type !== 'image' && r.type !== 'font');
  const navs = toOurs.filter((r) => r.nav || r.type === 'document');
  report('browser-traffic-to-our-servers', ourFailures.length === 0,
    `${navs.length} navigations (${[...new Set(navs.map((r) => `${r.method} ${new URL(r.url).pathname}`))].join(', ')}), ${cors.length} cross-origin fetches`
    + ` (${VERSION} sends discovery, /register and /token through its backend's /api/fetch and MCP through /api/mcp/*: ${backendFetches.length} proxied fetches,`
    + ` /token grants: ${Object.entries(backendFetches.filter((f) => f.grant).reduce((n, f) => ({ ...n, [f.grant]: (n[f.grant] || 0) + 1 }), {})).map(([g, n]) => `${n}× ${g}`).join(', ') || 'none'});`
    + ` ${ourFailures.length ? `failures: ${ourFailures.join(' | ')}` : 'no failed request, no CORS error, no error status from the AS or RS'}`);

  if (page && !page.isClosed()) {
    if (!page.url().startsWith(uiOrigin)) await page.goto(`${uiOrigin}/?MCP_INSPECTOR_API_TOKEN=${token}`);
    const mcpHeaders = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-11-25' };
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'cors-probe', version: '1' } } });
    const prmUrl = `${rsOrigin}/.well-known/oauth-protected-resource${new URL(resource).pathname}`;
    await corsProbe(page, uiOrigin, 'protected-resource-metadata', { url: prmUrl, method: 'GET', headers: { 'MCP-Protocol-Version': '2025-11-25' } },
      (r) => (r.status === 200 && r.text.includes(resource) ? '' : `status ${r.status}`));
    await corsProbe(page, uiOrigin, 'authorization-server-metadata', { url: `${asOrigin}/.well-known/oauth-authorization-server`, method: 'GET', headers: { 'MCP-Protocol-Version': '2025-11-25' } },
      (r) => (r.status === 200 && r.text.includes(issuer) ? '' : `status ${r.status}`));
    await corsProbe(page, uiOrigin, 'register', {
      url: `${issuer}/register`, method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_name: 'cors probe', redirect_uris: [`${uiOrigin}/oauth/callback`], token_endpoint_auth_method: 'none', scope: '' }),
    }, (r) => (r.status === 201 && r.text.includes('client_id') ? '' : `status ${r.status}: ${r.text}`));
    await corsProbe(page, uiOrigin, 'token-error-readable', {
      url: `${issuer}/token`, method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=authorization_code&code=not-a-code&client_id=mcp-test-client&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&code_verifier=x',
    }, (r) => (r.status === 400 && r.text.includes('invalid_grant') ? '' : `status ${r.status}: ${r.text}`));
    await corsProbe(page, uiOrigin, 'mcp-401-www-authenticate', { url: resource, method: 'POST', headers: mcpHeaders, body: init, read: 'WWW-Authenticate' },
      (r) => (r.status === 401 && r.header?.includes('resource_metadata') ? '' : `status ${r.status}, WWW-Authenticate ${r.header}`));
    await corsProbe(page, uiOrigin, 'mcp-bearer-preflight', {
      url: resource, method: 'POST', headers: { ...mcpHeaders, Authorization: 'Bearer not-a-token', 'Mcp-Session-Id': 'none' }, body: init, read: 'WWW-Authenticate',
    }, (r) => (r.status === 401 && r.header?.includes('invalid_token') ? '' : `status ${r.status}, WWW-Authenticate ${r.header}`));
  }
} catch (e) {
  report('cors-probes', false, clip(e.message, 400));
}

clearTimeout(watchdog);
await cleanup();
if (failures > 0) {
  log(`${failures} check(s) failed; the Inspector's output:\n${clip(readFileSync(inspectorLog, 'utf8'), 3000)}`);
  log(`browser console (last 30):\n${consoleLines.slice(-30).join('\n')}`);
}
rmSync(home, { recursive: true, force: true });
process.exit(failures > 0 ? 1 : 0);
