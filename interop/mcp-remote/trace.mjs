// Preloaded into mcp-remote (`node --import ./trace.mjs …/proxy.js`) to record its outgoing
// HTTP requests, the way the Python driver's httpx event hooks do: it only observes undici's
// diagnostics channels (Node's built-in fetch and the undici package both publish on them) and
// changes nothing. One JSON line per request is appended to $INTEROP_TRACE. Credentials are
// never written: of the Authorization header only its scheme, of a token request only the
// names of its parameters plus grant_type, scope and resource.
import dc from 'node:diagnostics_channel';
import { appendFileSync } from 'node:fs';

const out = process.env.INTEROP_TRACE;
const pending = new WeakMap();

function header(list, name) {
  // undici hands request headers over as a flat [name, value, …] array (strings or Buffers).
  if (!Array.isArray(list)) return undefined;
  for (let i = 0; i + 1 < list.length; i += 2) {
    if (String(list[i]).toLowerCase() === name) return String(list[i + 1]);
  }
  return undefined;
}

function write(entry) {
  try {
    appendFileSync(out, JSON.stringify(entry) + '\n');
  } catch {
    // A trace that cannot be written must not break the bridge.
  }
}

function finish(request, extra) {
  const e = pending.get(request);
  if (!e) return;
  pending.delete(request);
  const body = e.chunks.length ? Buffer.concat(e.chunks).toString('utf8') : '';
  const entry = { t: Date.now(), method: e.method, url: e.url, ...extra };
  const auth = e.authorization;
  entry.auth_scheme = auth ? auth.split(' ')[0].toLowerCase() : null;
  const path = new URL(e.url).pathname;
  if (path.endsWith('/token') && body) {
    const form = new URLSearchParams(body);
    entry.params = [...new Set(form.keys())].sort();
    entry.grant_type = form.get('grant_type');
    entry.scope = form.get('scope');
    entry.resource = form.get('resource');
  } else if (path.endsWith('/register') && body) {
    try {
      entry.request = JSON.parse(body);
    } catch {
      entry.request = null;
    }
  } else if (body && body.startsWith('{')) {
    try {
      const msg = JSON.parse(body);
      entry.rpc = Array.isArray(msg) ? msg.map((m) => m.method ?? 'response') : msg.method ?? 'response';
    } catch {
      // not JSON-RPC
    }
  }
  write(entry);
}

if (out) {
  dc.subscribe('undici:request:create', ({ request }) => {
    pending.set(request, {
      method: request.method,
      url: new URL(request.path, request.origin).href,
      authorization: header(request.headers, 'authorization'),
      chunks: [],
    });
  });
  dc.subscribe('undici:request:bodyChunkSent', ({ request, chunk }) => {
    const e = pending.get(request);
    if (e) e.chunks.push(Buffer.from(chunk));
  });
  dc.subscribe('undici:request:headers', ({ request, response }) => {
    const extra = { status: response.statusCode };
    if (response.statusCode === 401 || response.statusCode === 403) {
      extra.www_authenticate = header(response.headers, 'www-authenticate') ?? null;
    }
    finish(request, extra);
  });
  dc.subscribe('undici:request:error', ({ request, error }) => {
    finish(request, { status: null, error: String(error?.message ?? error) });
  });
}
