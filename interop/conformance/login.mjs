#!/usr/bin/env node
// Plays the user at the authorization server's HTML login and consent pages, so that
// flows which expect a person with a browser run unattended.
//
//   node login.mjs <authorization-url> [--user U] [--password P] [--no-deliver]
//
// Follows the AS's redirects with a cookie jar, submits form#login-form and then
// form#consent-form (decision=approve), and stops at the first redirect that leaves the
// AS origin: that is the authorization response. By default it is delivered with a GET
// (the waiting callback listener gets it, as a browser would); the URL is printed on
// stdout either way. Exits non-zero, with the last page on stderr, if it gets stuck.
// token.mjs imports approve() for the same walk.

import { pathToFileURL } from 'node:url';

export class LoginError extends Error {}

function fail(msg) {
  throw new LoginError(msg);
}

function decode(s) {
  return s
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return m ? decode(m[2] ?? m[3] ?? m[4]) : undefined;
}

// The form with the given id: its action and its hidden inputs.
function parseForm(html, id) {
  const re = /<form\b[^>]*>[\s\S]*?<\/form>/gi;
  for (const m of html.matchAll(re)) {
    const open = m[0].match(/<form\b[^>]*>/i)[0];
    if (attr(open, 'id') !== id) continue;
    const fields = new URLSearchParams();
    for (const input of m[0].matchAll(/<input\b[^>]*>/gi)) {
      const t = input[0];
      if ((attr(t, 'type') ?? 'text').toLowerCase() !== 'hidden') continue;
      const name = attr(t, 'name');
      if (name) fields.append(name, attr(t, 'value') ?? '');
    }
    return { action: attr(open, 'action') ?? '', fields };
  }
  return undefined;
}

// Walks the pages from the authorization URL to the authorization response and returns
// its URL (with code, state, iss, or error). Does not contact the redirect URI.
export async function approve(start, { user = 'testuser', password = 'testpass' } = {}) {
  const asOrigin = new URL(start).origin;
  const jar = new Map();

  async function request(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    return res;
  }

  let url = start;
  let res = await request(url);
  let triedLogin = false;
  for (let step = 0; step < 12; step++) {
    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.get('location');
      if (!loc) fail(`${res.status} without Location from ${url}`);
      const next = new URL(loc, url).toString();
      if (new URL(next).origin !== asOrigin) return next;
      url = next;
      res = await request(url);
      continue;
    }
    const body = await res.text();
    const login = parseForm(body, 'login-form');
    if (login && triedLogin) fail(`sign-in refused for ${user} (HTTP ${res.status})`);
    if (res.status !== 200) fail(`${res.status} from ${url}:\n${body}`);
    const consent = login ? undefined : parseForm(body, 'consent-form');
    if (login) {
      login.fields.set('username', user);
      login.fields.set('password', password);
      triedLogin = true;
    } else if (consent) {
      consent.fields.set('decision', 'approve');
    } else {
      fail(`no login or consent form at ${url}:\n${body}`);
    }
    const form = login ?? consent;
    url = new URL(form.action || url, url).toString();
    res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.fields.toString(),
    });
  }
  fail('too many steps without reaching the redirect URI');
}

async function main() {
  const args = process.argv.slice(2);
  let start;
  const opts = {
    user: process.env.CONFORMANCE_USER ?? 'testuser',
    password: process.env.CONFORMANCE_PASSWORD ?? 'testpass',
  };
  let deliver = true;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--user') opts.user = args[++i];
    else if (a === '--password') opts.password = args[++i];
    else if (a === '--no-deliver') deliver = false;
    else if (!start) start = a;
    else fail(`unexpected argument ${a}`);
  }
  if (!start) fail('usage: login.mjs <authorization-url> [--user U] [--password P] [--no-deliver]');
  const response = await approve(start, opts);
  process.stdout.write(`${response}\n`);
  if (!deliver) return;
  // The listener may still be binding when the URL is printed: retry briefly.
  for (let i = 0; ; i++) {
    try {
      await (await fetch(response)).text();
      return;
    } catch (e) {
      if (i >= 20) fail(`delivering ${response}: ${e.cause?.message ?? e.message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    process.stderr.write(`login.mjs: ${e.message}\n`);
    process.exit(1);
  });
}
