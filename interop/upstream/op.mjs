// A real OpenID Provider (node-oidc-provider) on 127.0.0.1, the upstream the federation tests
// sign in through. Its sign-in step approves at once as the account the test chose last
// (PUT /__test/next), so no HTML has to be driven here; everything else is the provider's own:
// discovery, JWKS (RS256), code + PKCE, nonce, id_token claims, RFC 9207 iss.
//   node op.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
// Test controls (loopback only):
//   PUT /__test/accounts/:sub  {"email":…, "email_verified":…, "hd":…}   claims of an account
//   PUT /__test/next           {"sub":…} or {"deny":true}                  who the next sign-in is
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const accounts = new Map();
let next = { sub: 'alice-upstream' };

// OP_CLAIMS=es256: id_tokens signed with a P-256 key instead of RSA.
const es256 = process.env.OP_CLAIMS === 'es256';
const ecKey = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  ...(es256 ? { jwks: { keys: [ecKey] } } : {}),
  clients: [{
    ...(es256 ? { id_token_signed_response_alg: 'ES256' } : {}),
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username', 'hd', 'groups', 'realm_access'] },
  scopes: ['openid', 'email', 'profile'],
  pkce: { required: () => true },
  // Claims in the id_token itself, as Google, Entra and Okta send them; OP_CLAIMS=userinfo
  // keeps them out of it (only at userinfo), as the OpenID Connect Core default has it.
  conformIdTokenClaims: process.env.OP_CLAIMS === 'userinfo',
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, ...(accounts.get(sub) || {}) };
      },
    };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

async function body(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return data ? JSON.parse(data) : {};
}

const callback = provider.callback();
http.createServer(async (req, res) => {
  try {
    if (req.method === 'PUT' && req.url.startsWith('/__test/accounts/')) {
      accounts.set(decodeURIComponent(req.url.slice('/__test/accounts/'.length)), await body(req));
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'PUT' && req.url === '/__test/next') {
      next = await body(req);
      res.writeHead(204).end();
      return;
    }
    if (req.url.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      if (next.deny) {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user said no' }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = new provider.Grant({ accountId: next.sub, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId: next.sub }, consent: { grantId } }, { mergeWithLastSubmission: false });
      return;
    }
    callback(req, res);
  } catch (e) {
    console.error(e);
    res.writeHead(500).end(String(e));
  }
}).listen(Number(port), '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
