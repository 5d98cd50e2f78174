// oidc-provider peer for the AuthGate benchmark (bench/README.md).
//
// One Node process serving panva's oidc-provider with the benchmark's shared clients
// (bench/peers/clients.json), one account `bench`, a scripted-client-friendly login
// interaction (GET shows an HTML form, POST checks username/password with bcrypt) and consent
// granted automatically for the bench clients (loadExistingGrant), PKCE S256 required,
// refresh-token rotation on every use, introspection, userinfo and client_credentials.
// Endpoints live at the same paths as AuthGate's so the harness sends identical requests.
//
//   PORT=8001 BCRYPT_ROUNDS=4 node server.js      (run.sh installs, pins to core 1 and starts it)
//
// Environment: PORT (8001), HOST (127.0.0.1), BCRYPT_ROUNDS (12), BENCH_CLIENTS (path of the
// shared clients.json; default ../clients.json next to this file's source), OIDC_ADAPTER
// (memory, the default; postgres with OIDC_PG_URL; lru), OIDC_DEBUG=1 to log grant errors.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import bcrypt from 'bcrypt';
import Provider, { errors } from 'oidc-provider';

const PORT = Number(process.env.PORT || 8001);
const HOST = process.env.HOST || '127.0.0.1';
const ROUNDS = Number(process.env.BCRYPT_ROUNDS || 12);
const ISSUER = `http://${HOST}:${PORT}`;
const CLIENTS_FILE = process.env.BENCH_CLIENTS
  || new URL('../../peers/clients.json', import.meta.url).pathname;
const SHARED = JSON.parse(readFileSync(CLIENTS_FILE, 'utf8'));
const API_RESOURCE = 'urn:authgate-bench:api';

// --- the one account ---------------------------------------------------------------------
const USER = SHARED.user;
const ACCOUNT_ID = randomUUID(); // opaque, stable for this process, like AuthGate's sub
const PASSWORD_HASH = await bcrypt.hash(USER.password, ROUNDS);

function account(id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: USER.email,
        email_verified: true,
        name: `${USER.first_name} ${USER.last_name}`,
        given_name: USER.first_name,
        family_name: USER.last_name,
        preferred_username: USER.username,
        roles: [USER.role],
      };
    },
  };
}

// --- clients -----------------------------------------------------------------------------
// Secrets are compared as plaintext (constant time) by oidc-provider: that is what it does.
const clients = Object.entries(SHARED.clients).map(([clientId, c]) => {
  const meta = {
    client_id: clientId,
    client_secret: c.secret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: c.grant_types,
    scope: c.scope,
    response_types: c.grant_types.includes('authorization_code') ? ['code'] : [],
    redirect_uris: c.redirect_uris || [],
  };
  if (c.grant_types.includes('authorization_code')) {
    meta.id_token_signed_response_alg = c.signing_alg;
  }
  return meta;
});
const JWT_CLIENTS = new Map(
  Object.entries(SHARED.clients)
    .filter(([, c]) => c.token_format === 'jwt' && c.grant_types.includes('client_credentials'))
    .map(([id, c]) => [id, c.signing_alg]),
);
const FIRST_PARTY = new Set(Object.keys(SHARED.clients));

// --- signing keys: one RSA 2048 and one P-256 key, made at start ---------------------------
function jwk(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg}-${randomBytes(4).toString('hex')}`, alg, use: 'sig' };
}
const jwks = {
  keys: [
    jwk('rsa', { modulusLength: 2048 }, 'RS256'),
    jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

// --- storage -----------------------------------------------------------------------------
// memory (default): our unbounded in-process Map (map_adapter.js); postgres: pg_adapter.js;
// lru: oidc-provider's own development-only MemoryAdapter (an LRU of 1000 entries, which loses
// live tokens under this benchmark's load -- kept only to show that).
const ADAPTER = process.env.OIDC_ADAPTER || 'memory';
let adapter;
if (ADAPTER === 'postgres') {
  const { default: PostgresAdapter, connect } = await import('./pg_adapter.js');
  await connect(process.env.OIDC_PG_URL || 'postgresql://postgres@127.0.0.1:5432/oidc_bench');
  adapter = PostgresAdapter;
} else if (ADAPTER === 'memory') {
  adapter = (await import('./map_adapter.js')).default;
} else if (ADAPTER !== 'lru') {
  throw new Error(`unknown OIDC_ADAPTER=${ADAPTER}`);
}

const ttl = SHARED.access_token_ttl;
const configuration = {
  adapter,
  clients,
  jwks,
  findAccount: (ctx, sub) => (sub === ACCOUNT_ID ? account(sub) : undefined),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    roles: ['roles'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'roles', 'api'],
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  routes: {
    authorization: '/oauth2/authorize',
    token: '/oauth2/token',
    introspection: '/oauth2/introspect',
    revocation: '/oauth2/revoke',
    userinfo: '/oauth2/userinfo',
    jwks: '/oauth2/jwks',
    end_session: '/oauth2/logout',
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true }, // oidc-provider 9 only supports S256
  clientBasedCORS: () => false,
  rotateRefreshToken: true, // every refresh returns a new refresh token; the old one is consumed
  // OIDC Core lets a provider drop offline_access unless prompt=consent, and oidc-provider does.
  // AuthGate (and DOT) issue a refresh token to a client allowed the refresh_token grant without
  // a consent prompt, so do the same here, and keep tokens independent of the login session.
  issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: () => false,
  // Consent is granted for the bench's own clients (no consent screen), like AuthGate with
  // --no-require-consent: create the grant the first time, reuse it afterwards.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (!FIRST_PARTY.has(ctx.oidc.client.clientId)) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.client.scope);
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client_credentials of a JWT client means the API resource; anything else gets the
      // default opaque access token (which is also the only kind userinfo accepts).
      defaultResource: (ctx, client, oneOf) => {
        if (oneOf) return oneOf;
        if (ctx.oidc.route === 'token' && ctx.oidc.params.grant_type === 'client_credentials'
            && JWT_CLIENTS.has(client.clientId)) return API_RESOURCE;
        return undefined;
      },
      getResourceServerInfo: (ctx, resourceIndicator, client) => {
        if (resourceIndicator !== API_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: 'api',
          audience: API_RESOURCE,
          accessTokenTTL: ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: JWT_CLIENTS.get(client.clientId) || 'RS256' } },
        };
      },
      useGrantedResource: () => false,
    },
  },
  ttl: {
    AccessToken: ttl,
    ClientCredentials: ttl,
    AuthorizationCode: 60,
    IdToken: ttl,
    RefreshToken: SHARED.refresh_token_ttl,
    Grant: SHARED.refresh_token_ttl,
    Interaction: 600,
    Session: 86400,
  },
};

const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', ctx.path, err));
if (process.env.OIDC_DEBUG) {
  for (const ev of ['grant.error', 'introspection.error', 'userinfo.error', 'authorization.error']) {
    provider.on(ev, (ctx, err) => console.error(ev, err.message, err.error_detail || err.error_description || ''));
  }
}

// --- the login interaction: plain HTML, no JavaScript, so a scripted client can log in ----
const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function loginPage(uid, clientId, error) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sign in</title></head><body>
<h1>Sign in to ${esc(clientId)}</h1>${error ? `<p role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<input type="hidden" name="uid" value="${esc(uid)}">
<label>Username <input name="username" autofocus></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Sign in</button></form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch', 'text/plain');
  const clientId = details.params.client_id;

  if (details.prompt.name === 'login') {
    if (req.method === 'GET' && !action) return send(res, 200, loginPage(uid, clientId));
    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const ok = form.get('username') === USER.username
        && await bcrypt.compare(form.get('password') || '', PASSWORD_HASH);
      if (!ok) return send(res, 200, loginPage(uid, clientId, 'Invalid username or password.'));
      return provider.interactionFinished(req, res, { login: { accountId: ACCOUNT_ID } }, { mergeWithLastSubmission: false });
    }
  }

  if (details.prompt.name === 'consent' && FIRST_PARTY.has(clientId)) {
    // Only reached if the existing grant lacks something; grant what is missing, no screen.
    const { Grant } = provider;
    const grant = details.grantId
      ? await Grant.find(details.grantId)
      : new Grant({ accountId: details.session.accountId, clientId });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return send(res, 400, `unsupported prompt ${esc(details.prompt.name)}`, 'text/plain');
}

const callback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?\/?$/;

const server = http.createServer(async (req, res) => {
  const match = INTERACTION.exec(req.url.split('?', 1)[0]);
  if (!match) return callback(req, res);
  try {
    return await interaction(req, res, match[1], match[2]);
  } catch (err) {
    if (err instanceof errors.SessionNotFound) return send(res, 400, 'interaction expired', 'text/plain');
    console.error('interaction error', err);
    return send(res, 500, 'internal error', 'text/plain');
  }
});
server.keepAliveTimeout = 75_000;
server.headersTimeout = 76_000;
server.listen(PORT, HOST, () => {
  console.log(`oidc-provider ${ISSUER} ready (node ${process.version}, bcrypt cost ${ROUNDS}, adapter ${ADAPTER}, pid ${process.pid})`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
