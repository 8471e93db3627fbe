// Real-browser check of the authorization server's HTML flow:
// login (with a wrong password first), consent, redirect with code, token
// exchange, the account page with a revoke, and a second request that must
// ask for consent again (then denied). Drives Debian's Chromium through
// playwright-core; no browser is downloaded.
//
// Usage: node browser.mjs <issuer> <resource> <screenshot-dir>
// Output: one JSON line per check (and per screenshot) on stdout; exit 1 on
// any failure.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve, join } from 'node:path';
import { chromium } from 'playwright-core';

const [issuerArg, resource, shotArg] = process.argv.slice(2);
if (!issuerArg || !resource || !shotArg) {
  console.error('usage: node browser.mjs <issuer> <resource> <screenshot-dir>');
  process.exit(2);
}
const issuer = issuerArg.replace(/\/+$/, '');
const shotDir = resolve(shotArg);
mkdirSync(shotDir, { recursive: true });

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CLIENT_ID = process.env.BROWSER_CLIENT_ID || 'mcp-test-client';
// The display name the AS has registered for the demo client.
const CLIENT_NAME = process.env.BROWSER_CLIENT_NAME || 'MCP test client';
const USERNAME = process.env.BROWSER_USERNAME || 'testuser';
const PASSWORD = process.env.BROWSER_PASSWORD || 'testpass';
const CALLBACK_PORT = Number(process.env.BROWSER_CALLBACK_PORT || 8976);
const REDIRECT_HOST = '127.0.0.1';
const SCOPES = ['mcp:read', 'mcp:write'];
const DESKTOP = { width: 1280, height: 800 };
const MOBILE = { width: 390, height: 844 };

let failures = 0;
let passes = 0;
function report(check, ok, detail = '') {
  if (ok) passes++; else failures++;
  console.log(JSON.stringify({ suite: 'browser', check, result: ok ? 'pass' : 'fail', detail: String(detail) }));
  return ok;
}

async function shot(page, name, opts = {}) {
  const path = join(shotDir, name);
  // The CSS has 0.15 s colour transitions; a shot right after a colour-scheme
  // switch would catch them half-way.
  await page.screenshot({ path, fullPage: true, animations: 'disabled', ...opts });
  console.log(JSON.stringify({ suite: 'browser', screenshot: path }));
  return path;
}

// Horizontal overflow is the usual way a layout breaks on a phone.
async function noHorizontalOverflow(page) {
  return page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
}

async function checkNoOverflow(page, check) {
  const m = await noHorizontalOverflow(page);
  report(check, m.scrollWidth <= m.innerWidth, `scrollWidth=${m.scrollWidth} innerWidth=${m.innerWidth}`);
}

async function textOf(locator) {
  return ((await locator.first().textContent()) || '').replace(/\s+/g, ' ').trim();
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

// A real loopback listener, as a native client would run (RFC 8252).
// page.route() cannot stand in for it: Playwright does not route requests
// that follow a redirect, and the AS answers the consent POST with a 303.
const callbacks = [];
const callbackServer = createServer((req, res) => {
  // Chromium also asks for /favicon.ico; only the callback itself counts.
  if (req.url.startsWith('/callback')) callbacks.push(req.url);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', connection: 'close' });
  res.end('<p>done</p>');
});
function listen(port) {
  return new Promise((ok, fail) => {
    callbackServer.once('error', fail);
    callbackServer.listen(port, '127.0.0.1', () => { callbackServer.off('error', fail); ok(); });
  });
}
try {
  await listen(CALLBACK_PORT);
} catch (e) {
  // The AS accepts any loopback port, so a busy default port is no reason to fail.
  if (e.code !== 'EADDRINUSE') throw e;
  await listen(0);
}
const REDIRECT_URI = `http://127.0.0.1:${callbackServer.address().port}/callback`;

function newRequest() {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(16));
  // encodeURIComponent gives %20 for the space in scope (RFC 3986 style).
  const query = [
    ['response_type', 'code'],
    ['client_id', CLIENT_ID],
    ['redirect_uri', REDIRECT_URI],
    ['code_challenge', challenge],
    ['code_challenge_method', 'S256'],
    ['scope', SCOPES.join(' ')],
    ['resource', resource],
    ['state', state],
  ].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return { verifier, state, url: `${issuer}/authorize?${query}` };
}
const { verifier, state, url: authorizeUrl } = newRequest();

// Resolves to 'consent' or 'callback', whichever the AS shows next.
async function consentOrCallback(page) {
  await Promise.race([
    page.waitForSelector('form#consent-form'),
    page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)),
  ]);
  return page.url().startsWith(REDIRECT_URI) ? 'callback' : 'consent';
}

let browser;
let step = 'launch';
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking flags Chromium's own outgoing
    // connections are refused on locked-down machines and slow startup.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
  report('launch', true, `chromium ${browser.version()}`);

  const context = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();

  // Console errors would show e.g. CSP blocking the stylesheet.
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  // ---- login page ----
  step = 'login-page';
  const resp = await page.goto(authorizeUrl, { waitUntil: 'load' });
  report('login-page-loads', resp && resp.status() === 200 && (await page.locator('form#login-form').count()) === 1,
    `status=${resp && resp.status()} url=${page.url()}`);

  const stylesheetOk = await page.evaluate(() => [...document.styleSheets]
    .some((s) => s.href && s.href.endsWith('/assets/style.css') && s.cssRules.length > 0));
  report('stylesheet-applied', stylesheetOk, '/assets/style.css');

  const loginTitle = await textOf(page.locator('h1'));
  report('login-shows-client-name', loginTitle.includes(CLIENT_NAME), loginTitle);
  const loginHost = await textOf(page.locator('.host'));
  report('login-shows-redirect-host', loginHost === REDIRECT_HOST, loginHost);
  await shot(page, 'login.png');

  await page.setViewportSize(MOBILE);
  await shot(page, 'login-mobile.png');
  await checkNoOverflow(page, 'login-mobile-no-horizontal-overflow');
  await page.setViewportSize(DESKTOP);

  // ---- wrong password ----
  step = 'wrong-password';
  await page.fill('#username', USERNAME);
  await page.fill('#password', `${PASSWORD}-wrong`);
  await Promise.all([
    page.waitForLoadState('load'),
    page.locator('form#login-form').getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const errorAlert = page.getByRole('alert').filter({ hasText: 'Wrong username or password' });
  await errorAlert.first().waitFor({ state: 'visible' });
  report('wrong-password-error-visible', await errorAlert.first().isVisible(), await textOf(errorAlert));
  report('wrong-password-stays-on-login', (await page.locator('form#login-form').count()) === 1, page.url());
  await shot(page, 'login-error.png');

  // ---- correct password ----
  step = 'login';
  await page.fill('#username', USERNAME);
  await page.fill('#password', PASSWORD);
  await page.locator('form#login-form').getByRole('button', { name: 'Sign in' }).click();
  // A consent remembered from an earlier run makes the AS skip the page.
  const afterLogin = await consentOrCallback(page);
  report('login-succeeds', true, page.url().split('?')[0]);
  if (afterLogin === 'callback') {
    report('consent-page-shown', false,
      `AS skipped consent: ${USERNAME} already granted ${CLIENT_ID}; revoke it on /account or use a fresh data dir`);
    throw new Error('cannot continue without the consent page');
  }

  // ---- consent page ----
  step = 'consent';
  const consentTitle = await textOf(page.locator('h1'));
  report('consent-shows-client-name', consentTitle.includes(CLIENT_NAME), consentTitle);
  const consentHost = await textOf(page.locator('.redirect-notice .host'));
  report('consent-shows-redirect-host', consentHost === REDIRECT_HOST, consentHost);
  const chips = (await page.locator('.scope-list .chip').allTextContents()).map((s) => s.trim());
  report('consent-shows-scopes', SCOPES.every((s) => chips.includes(s)), chips.join(' '));
  const consentResource = await textOf(page.locator('section[aria-labelledby="resource-heading"]'));
  report('consent-shows-resource', consentResource.includes(resource), consentResource);
  await shot(page, 'consent.png', { fullPage: true });

  await page.setViewportSize(MOBILE);
  await shot(page, 'consent-mobile.png');
  await checkNoOverflow(page, 'consent-mobile-no-horizontal-overflow');
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'consent-dark.png');
  await page.emulateMedia({ colorScheme: 'light' });

  // ---- approve and land on the callback ----
  step = 'approve';
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)),
    page.locator('button[name=decision][value=approve]').getByText('Allow').click(),
  ]);
  const cb = new URL(page.url());
  const code = cb.searchParams.get('code');
  report('callback-reached', cb.href.startsWith(REDIRECT_URI), cb.origin + cb.pathname);
  report('callback-has-code', !!code, code ? `${code.length} chars` : 'missing');
  report('callback-state-matches', cb.searchParams.get('state') === state, cb.searchParams.get('state'));
  report('callback-iss-matches', cb.searchParams.get('iss') === issuer, cb.searchParams.get('iss'));
  report('callback-page-shown', (await textOf(page.locator('body'))) === 'done' && callbacks.length === 1,
    `${callbacks.length} request(s) to the callback listener`);

  // ---- token exchange proves the code is real ----
  step = 'token';
  const tokenResp = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: code || '',
      redirect_uri: REDIRECT_URI,
      client_id: CLIENT_ID,
      code_verifier: verifier,
    }),
  });
  const tokenBody = await tokenResp.text();
  let tokenJson = {};
  try { tokenJson = JSON.parse(tokenBody); } catch { /* reported below */ }
  report('token-exchange', tokenResp.status === 200 && typeof tokenJson.access_token === 'string' && tokenJson.access_token.length > 0,
    tokenResp.status === 200
      ? `200 token_type=${tokenJson.token_type} scope=${tokenJson.scope} expires_in=${tokenJson.expires_in}`
      : `${tokenResp.status} ${tokenBody.slice(0, 200)}`);

  // ---- account page in the same (signed-in) context ----
  step = 'account';
  const accResp = await page.goto(`${issuer}/account`, { waitUntil: 'load' });
  report('account-page-loads', accResp && accResp.status() === 200, `status=${accResp && accResp.status()}`);
  const signedIn = await textOf(page.locator('.card-header .muted'));
  // The page shows the user's display name, which need not be the login name.
  report('account-signed-in', /^Signed in as \S/.test(signedIn), signedIn);
  const clients = (await page.locator('.grant-list .grant-client').allTextContents()).map((s) => s.trim());
  report('account-lists-authorized-client', clients.includes(CLIENT_NAME), clients.join(', ') || 'no grants listed');
  await shot(page, 'account.png');
  await page.setViewportSize(MOBILE);
  await shot(page, 'account-mobile.png');
  await checkNoOverflow(page, 'account-mobile-no-horizontal-overflow');
  await page.setViewportSize(DESKTOP);

  // Revoking through the UI checks the button and leaves no grant behind,
  // so a rerun against the same stack sees the consent page again.
  step = 'revoke';
  const item = page.locator('.grant-item').filter({ hasText: CLIENT_NAME });
  await Promise.all([
    page.waitForLoadState('load'),
    item.first().getByRole('button', { name: 'Revoke' }).click(),
  ]);
  await page.waitForURL((u) => u.pathname.startsWith('/account'));
  const left = (await page.locator('.grant-list .grant-client').allTextContents()).map((s) => s.trim());
  report('account-revoke-removes-grant', !left.includes(CLIENT_NAME), left.join(', ') || 'no grants listed');
  await shot(page, 'account-revoked.png');

  // After a revoke the application must ask again rather than get a code
  // silently. Deny this time, which also checks the error redirect.
  step = 'reauthorize';
  const again = newRequest();
  await page.goto(again.url, { waitUntil: 'load' });
  if ((await consentOrCallback(page)) === 'callback') {
    const u = new URL(page.url());
    report('revoked-client-asks-consent-again', false,
      `AS redirected straight to the client (code ${u.searchParams.has('code') ? 'issued' : 'absent'}) after the grant was revoked on /account`);
  } else {
    report('revoked-client-asks-consent-again', true, await textOf(page.locator('h1')));
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)),
      page.locator('button[name=decision][value=deny]').getByText('Deny').click(),
    ]);
    const d = new URL(page.url());
    report('deny-returns-access-denied',
      d.searchParams.get('error') === 'access_denied' && !d.searchParams.has('code')
        && d.searchParams.get('state') === again.state && d.searchParams.get('iss') === issuer,
      d.search);
  }

  step = 'console';
  report('no-console-errors', consoleErrors.length === 0, consoleErrors.join(' | ').slice(0, 500));

  await context.close();
} catch (e) {
  report(`${step}-completed`, false, (e && e.message ? e.message : String(e)).split('\n')[0]);
} finally {
  if (browser) await browser.close().catch(() => {});
  callbackServer.close();
}

// Plain totals on stderr keep stdout pure JSON lines.
console.error(`browser: ${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
