import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import { cognitoAuthenticator } from '../../lambdas/portal/auth';

/*
 * The portal's Cognito sign-in, against a stand-in of the pool's token endpoint (OAuth 2.0 authorization code with
 * PKCE, as Cognito answers it) and the pool's JWKS: the code exchange, and aws-jwt-verify accepting the pool's
 * access tokens for this client only.
 */

const POOL = 'ca-central-1_AbCdEf123';
const CLIENT = 'portalclient123';
const ISSUER = `https://cognito-idp.ca-central-1.amazonaws.com/${POOL}`;
const REDIRECT = 'https://api.example.ca/portal/';
const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] };

function jwt(claims: Record<string, unknown>, key: KeyObject = privateKey): string {
  const head = b64url(JSON.stringify({ alg: 'RS256', kid: 'k1', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  return `${head}.${body}.${b64url(sign('RSA-SHA256', Buffer.from(`${head}.${body}`), key))}`;
}

const now = () => Math.floor(Date.now() / 1000);
const access = (extra: Record<string, unknown> = {}) => ({
  sub: 'user-sub-1', iss: ISSUER, client_id: CLIENT, token_use: 'access', scope: 'openid email', iat: now(), exp: now() + 3600, ...extra,
});

// The stand-in token endpoint: one issued code, bound to a PKCE challenge and a redirect URI.
const VERIFIER = b64url(Buffer.alloc(48, 7));
const issued = { code: 'the-code', challenge: b64url(createHash('sha256').update(VERIFIER).digest()), redirect: REDIRECT };
const jwksRequests: string[] = [];
let server: Server;
let domain: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c)).on('end', () => {
      const form = new URLSearchParams(body);
      const ok = req.method === 'POST' && req.url === '/oauth2/token' && req.headers['content-type'] === 'application/x-www-form-urlencoded'
        && form.get('grant_type') === 'authorization_code' && form.get('client_id') === CLIENT && form.get('code') === issued.code
        && form.get('redirect_uri') === issued.redirect && b64url(createHash('sha256').update(form.get('code_verifier') ?? '').digest()) === issued.challenge;
      res.writeHead(ok ? 200 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { access_token: jwt(access()), id_token: 'x', token_type: 'Bearer', expires_in: 3600 } : { error: 'invalid_grant' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  domain = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));

function authenticator() {
  // The pool's JWKS as Cognito publishes it, without the network: the URI asked for is recorded.
  const jwksCache = new SimpleJwksCache({ fetcher: { fetch: async (uri: string) => { jwksRequests.push(uri); return new TextEncoder().encode(JSON.stringify(jwks)).buffer as ArrayBuffer; } } });
  return cognitoAuthenticator({ userPoolId: POOL, clientId: CLIENT, domain }, { jwksCache });
}

test('the page\'s code and verifier are exchanged at the pool\'s token endpoint; the access token signs the user in', async () => {
  const auth = authenticator();
  expect(auth.signInConfig).toEqual({ mode: 'cognito', authorize_url: `${domain}/oauth2/authorize`, logout_url: `${domain}/logout`, client_id: CLIENT, scope: 'openid email' });
  const { token, expires_in } = await auth.signIn({ code: issued.code, code_verifier: VERIFIER, redirect_uri: REDIRECT });
  expect(expires_in).toBe(3600);
  expect(await auth.authenticate(token)).toEqual({ userId: 'user-sub-1' });
  expect(jwksRequests).toEqual([`${ISSUER}/.well-known/jwks.json`]);
});

test('a wrong verifier, code or redirect is refused by the pool, and the portal says so', async () => {
  const auth = authenticator();
  const good = { code: issued.code, code_verifier: VERIFIER, redirect_uri: REDIRECT };
  for (const bad of [{ ...good, code_verifier: b64url(Buffer.alloc(48, 8)) }, { ...good, code: 'other' }, { ...good, redirect_uri: 'https://evil.example/portal/' }]) {
    await expect(auth.signIn(bad)).rejects.toMatchObject({ status: 401, code: 'sign_in_failed' });
  }
  await expect(auth.signIn({ code: issued.code })).rejects.toMatchObject({ status: 400 });
});

test('only this pool\'s unexpired access tokens for this client, signed by its key, are accepted', async () => {
  const auth = authenticator();
  expect(await auth.authenticate(jwt(access()))).toEqual({ userId: 'user-sub-1' });
  for (const [why, token] of [
    ['expired', jwt(access({ iat: now() - 7200, exp: now() - 3600 }))],
    ['another client', jwt(access({ client_id: 'someone-else' }))],
    ['an id token', jwt(access({ token_use: 'id', aud: CLIENT }))],
    ['another pool', jwt(access({ iss: 'https://cognito-idp.ca-central-1.amazonaws.com/ca-central-1_Other999' }))],
    ['another key', jwt(access(), other.privateKey)],
    ['not a JWT', 'forged-token'],
  ] as const) {
    expect([why, await auth.authenticate(token)]).toEqual([why, null]);
  }
});
