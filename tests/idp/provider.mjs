// Test-only OpenID Provider for the accessgov test suite (node `oidc-provider`).
// NOT for production: secrets and passwords come from a public fixture, keys live in memory.
//
//   node tests/idp/provider.mjs --port 0 --fixture tests/idp/fixture.json \
//        [--console-redirect-uri URI ...] [--exit-on-stdin-close]
//
// Prints exactly one JSON line on stdout once it serves requests:
//   {"ready": true, "issuer": "http://127.0.0.1:PORT", "port": PORT}
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints notices through console.info/log; stdout is reserved for the ready line.
console.info = console.error; // eslint-disable-line no-console
console.log = console.error; // eslint-disable-line no-console

const DEFAULT_CONSOLE_REDIRECT_URI = 'http://127.0.0.1:9/callback';
const DEFAULT_API_TTL = 300;
// Fixture keys that describe our policy, not OIDC client metadata.
const NON_METADATA_KEYS = ['api_scopes', 'access_token_ttl', 'redirect_uris_from_cli', 'resource_scopes', 'post_logout_path', '_comment'];
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string', default: '0' },
      fixture: { type: 'string' },
      'console-redirect-uri': { type: 'string', multiple: true, default: [] },
      'exit-on-stdin-close': { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port ${values.port}`);
  if (!values.fixture) throw new Error('--fixture is required');
  const redirectUris = values['console-redirect-uri'];
  return {
    port,
    fixture: loadFixture(values.fixture),
    consoleRedirectUris: redirectUris.length ? redirectUris : [DEFAULT_CONSOLE_REDIRECT_URI],
    exitOnStdinClose: values['exit-on-stdin-close'],
  };
}

function loadFixture(path) {
  const fixture = JSON.parse(fs.readFileSync(path, 'utf8'));
  for (const key of ['api_audience', 'api_scopes', 'clients', 'accounts']) {
    if (!(key in fixture)) throw new Error(`fixture ${path} lacks "${key}"`);
  }
  const known = new Set(fixture.api_scopes);
  const servers = new Map((fixture.resource_servers ?? []).map((server) => [server.indicator, server]));
  for (const client of fixture.clients) {
    const unknown = (client.api_scopes ?? []).filter((scope) => !known.has(scope));
    if (unknown.length) throw new Error(`client ${client.client_id}: unknown api_scopes ${unknown}`);
    for (const [indicator, scopes] of Object.entries(client.resource_scopes ?? {})) {
      const server = servers.get(indicator);
      if (!server) throw new Error(`client ${client.client_id}: unknown resource ${indicator}`);
      const stray = scopes.filter((scope) => !(server.scopes ?? []).includes(scope));
      if (stray.length) throw new Error(`client ${client.client_id}: ${indicator} has no scopes ${stray}`);
    }
  }
  return fixture;
}

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `test-${crypto.randomUUID()}`;
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

function clientMetadata(fixture, consoleRedirectUris) {
  return fixture.clients.map((entry) => {
    const metadata = { ...entry };
    if (entry.redirect_uris_from_cli) metadata.redirect_uris = consoleRedirectUris;
    // RP-initiated logout returns to `post_logout_path` on the origin of each CLI redirect URI.
    if (entry.redirect_uris_from_cli && entry.post_logout_path) {
      metadata.post_logout_redirect_uris = consoleRedirectUris.map((uri) => new URL(entry.post_logout_path, uri).href);
    }
    for (const key of NON_METADATA_KEYS) delete metadata[key];
    return metadata;
  });
}

// Resource servers: the accessgov API (`api_audience`: client_credentials tokens of the backends),
// and the user-facing APIs of `resource_servers` (the CRM's, the OA's), whose JWT access tokens a
// signed-in person's client gets in the code flow with `resource=` (RFC 8707) and which carry that
// person's claims (`extraTokenClaims`). A client gets only the scopes the fixture lists for it
// (`api_scopes`, `resource_scopes`): oidc-provider silently drops any requested scope missing from
// the returned `scope`, and a resource the client is not listed for is `invalid_target`.
function resourceIndicators(fixture) {
  const entries = new Map(fixture.clients.map((entry) => [entry.client_id, entry]));
  const servers = new Map((fixture.resource_servers ?? []).map((server) => [server.indicator, server]));
  return {
    enabled: true,
    // client_credentials without `resource=` targets the API; the code flow keeps the default
    // (no resource), so its access token is for userinfo unless the client names a resource.
    defaultResource: async (ctx, client, oneOf) => (
      ctx.oidc.params?.grant_type === 'client_credentials' ? fixture.api_audience : oneOf
    ),
    useGrantedResource: async () => false,
    getResourceServerInfo: async (ctx, indicator, client) => {
      const entry = entries.get(client.clientId) ?? {};
      if (indicator === fixture.api_audience) {
        return {
          scope: (entry.api_scopes ?? []).join(' '),
          audience: fixture.api_audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: entry.access_token_ttl ?? fixture.api_access_token_ttl ?? DEFAULT_API_TTL,
          jwt: { sign: { alg: 'RS256' } },
        };
      }
      const server = servers.get(indicator);
      const scopes = entry.resource_scopes?.[indicator];
      if (!server || !scopes) throw new errors.InvalidTarget();
      return {
        scope: scopes.join(' '),
        audience: indicator,
        accessTokenFormat: 'jwt',
        accessTokenTTL: server.access_token_ttl ?? DEFAULT_API_TTL,
        jwt: { sign: { alg: 'RS256' } },
      };
    },
  };
}

// A signed-in person's JWT access token for a user-facing resource server carries the claims that
// server lists (`user_claims`, from the account's `claims` and `access_token_claims`), like an IdP's
// access-token claim mappers (Keycloak puts `realm_access` / `resource_access` roles there). Client
// credentials tokens (no account) get none: their `sub` is the client id.
function extraTokenClaimsFn(fixture) {
  const bySub = new Map(fixture.accounts.map((account) => [account.claims.sub, account]));
  const servers = new Map((fixture.resource_servers ?? []).map((server) => [server.indicator, server]));
  return async (ctx, token) => {
    const server = servers.get(token.resourceServer?.identifier());
    const account = token.accountId ? bySub.get(token.accountId) : undefined;
    if (!server || !account) return undefined;
    const available = { ...account.claims, ...(account.access_token_claims ?? {}) };
    const out = {};
    for (const name of server.user_claims ?? []) {
      if (name in available && name !== 'sub') out[name] = available[name];
    }
    return out;
  };
}

function findAccountFn(fixture) {
  const bySub = new Map(fixture.accounts.map((account) => [account.claims.sub, account]));
  return async (ctx, sub) => {
    const account = bySub.get(sub);
    if (!account) return undefined;
    // The provider filters these by granted scopes and the `claims` map below.
    return { accountId: sub, claims: async () => ({ ...account.claims }) };
  };
}

// TTLs are functions on purpose: a constant ttl.AccessToken / ttl.ClientCredentials would
// override the resource server's accessTokenTTL (the 2-second test token would live 300 s).
const resourceTtl = (ctx, token) => token.resourceServer?.accessTokenTTL ?? DEFAULT_API_TTL;

function providerConfig({ fixture, consoleRedirectUris, signingKey, cookieKeys }) {
  return {
    clients: clientMetadata(fixture, consoleRedirectUris),
    jwks: { keys: [signingKey] },
    cookies: { keys: cookieKeys },
    findAccount: findAccountFn(fixture),
    extraTokenClaims: extraTokenClaimsFn(fixture),
    // Custom claims ride on `openid` so every login carries them, like an IdP claim mapper would.
    claims: {
      openid: ['sub', 'employee_no', 'department', 'crm_roles', 'oa_roles', 'groups'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    conformIdTokenClaims: false,
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: resourceIndicators(fixture),
    },
    ttl: {
      AccessToken: resourceTtl,
      ClientCredentials: resourceTtl,
      AuthorizationCode: () => 60,
      IdToken: () => 300,
      Interaction: () => 600,
      Session: () => 3600,
      Grant: () => 3600,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<p id="error">${escapeHtml(out.error)}: ${escapeHtml(out.error_description ?? '')}</p>`);
    },
  };
}

// Client metadata is validated lazily by oidc-provider; look every client up now so a bad
// fixture fails at start instead of at the first token request.
async function buildProvider(issuer, options) {
  const provider = new Provider(issuer, providerConfig(options));
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error:', err));
  for (const { client_id: clientId } of options.fixture.clients) {
    if (!(await provider.Client.find(clientId))) throw new Error(`client ${clientId} not loadable`);
  }
  return { provider, callback: provider.callback() };
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}

function send(res, status, contentType, body) {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(body);
}

function sendJson(res, status, value) {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function renderLogin(res, uid, { status = 200, error = '', login = '' } = {}) {
  const message = error ? `<p id="error" role="alert">${escapeHtml(error)}</p>` : '';
  send(res, status, 'text/html; charset=utf-8', page('Sign in', `
<h1>accessgov test IdP</h1>${message}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label for="login">Login</label> <input id="login" name="login" value="${escapeHtml(login)}" required autofocus>
  <label for="password">Password</label> <input id="password" name="password" type="password" required>
  <button id="submit" type="submit">Sign in</button>
</form>`));
}

async function readForm(req, limit = 64 * 1024) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new Error('form body too large');
  }
  return new URLSearchParams(body);
}

function checkPassword(account, password) {
  const expected = crypto.createHash('sha256').update(account?.password ?? '').digest();
  const given = crypto.createHash('sha256').update(password ?? '').digest();
  return Boolean(account) && crypto.timingSafeEqual(expected, given);
}

async function submitLogin(req, res, provider, fixture, uid) {
  const form = await readForm(req);
  const login = form.get('login') ?? '';
  const account = fixture.accounts.find((a) => a.login === login || a.claims.email === login);
  if (!checkPassword(account, form.get('password'))) {
    renderLogin(res, uid, { status: 401, error: 'Invalid login or password.', login });
    return;
  }
  const result = { login: { accountId: account.claims.sub } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// First-party test clients never see a consent page: grant exactly what the prompt lacks.
async function autoConsent(req, res, provider, interaction) {
  const { prompt: { details }, params, session } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

// The interaction cookie is scoped to /interaction/<uid>, so the login routes live there.
async function handleInteraction(req, res, state, uid, action) {
  const { provider } = state;
  const interaction = await provider.interactionDetails(req, res);
  if (interaction.uid !== uid) {
    sendJson(res, 400, { error: 'interaction uid does not match the interaction cookie' });
  } else if (req.method === 'GET' && !action && interaction.prompt.name === 'consent') {
    await autoConsent(req, res, provider, interaction);
  } else if (req.method === 'GET' && !action) {
    renderLogin(res, uid);
  } else if (req.method === 'POST' && action === 'login') {
    await submitLogin(req, res, provider, state.options.fixture, uid);
  } else {
    sendJson(res, 405, { error: 'method not allowed' });
  }
}

// oidc-provider's keystore is fixed at construction, so rotation builds a new Provider with a
// fresh key and swaps it in. The old key is dropped entirely (tokens it signed stop verifying
// once a verifier refetches the JWKS). Sessions, grants and interactions survive: the memory
// adapter is module-wide and the cookie keys are reused.
async function rotateKeys(req, res, state) {
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'POST only' });
  if (!LOOPBACK.has(req.socket.remoteAddress)) return sendJson(res, 403, { error: 'loopback only' });
  const signingKey = newSigningKey();
  Object.assign(state, await buildProvider(state.issuer, { ...state.options, signingKey }));
  return sendJson(res, 200, { kid: signingKey.kid });
}

function dispatcher(state) {
  return async (req, res) => {
    try {
      const { pathname } = new URL(req.url, state.issuer);
      const interaction = pathname.match(/^\/interaction\/([\w-]+)(?:\/(login))?$/);
      if (pathname === '/__test__/rotate-keys') await rotateKeys(req, res, state);
      else if (interaction) await handleInteraction(req, res, state, interaction[1], interaction[2]);
      else state.callback(req, res);
    } catch (err) {
      if (res.headersSent) return;
      if (err instanceof errors.SessionNotFound) sendJson(res, 400, { error: err.message });
      else {
        console.error('test IdP error:', err);
        sendJson(res, 500, { error: 'server_error' });
      }
    }
  };
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

function installShutdown(server, exitOnStdinClose) {
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The Python harness holds our stdin open; if it dies without stopping us, we still exit.
  if (exitOnStdinClose) {
    process.stdin.on('end', stop).on('error', stop).resume();
  }
}

async function main() {
  const cli = parseCli(process.argv.slice(2));
  const state = { options: { ...cli, cookieKeys: [crypto.randomBytes(32).toString('hex')] } };
  const server = http.createServer(dispatcher(state));
  const port = await listen(server, cli.port);
  state.issuer = `http://127.0.0.1:${port}`;
  Object.assign(state, await buildProvider(state.issuer, { ...state.options, signingKey: newSigningKey() }));
  installShutdown(server, cli.exitOnStdinClose);
  process.stdout.write(`${JSON.stringify({ ready: true, issuer: state.issuer, port })}\n`);
}

main().catch((err) => {
  console.error('test IdP failed to start:', err);
  process.exit(1);
});
