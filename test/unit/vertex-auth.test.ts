import { createPublicKey, createVerify } from 'node:crypto';
import { accessTokens, REFRESH_MARGIN_MS, ServiceAccountKey, signedAssertion } from '../../lambdas/providers/vertex-ai/auth';
import { UpstreamError } from '../../lambdas/providers/provider';
import { startVertexStandIn, type VertexStandIn } from '../../local/vertex-standin';

/* The service-account path against the stand-in's token endpoint, which verifies the JWT as Google does. */

let standIn: VertexStandIn;
let key: ServiceAccountKey;
/** The clock of the token endpoint and of the client, moved by the tests. */
let now = Date.now();
beforeAll(async () => {
  standIn = await startVertexStandIn({ now: () => now });
  key = ServiceAccountKey.parse(standIn.serviceAccountKey);
});
afterAll(() => standIn.close());
beforeEach(() => standIn.reset());

test('the assertion is an RS256 JWT signed by the key, for the token endpoint and the cloud-platform scope', () => {
  const jwt = signedAssertion(key, 1_700_000_000_500);
  const [header, claims, signature] = jwt.split('.');
  expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toEqual({ alg: 'RS256', typ: 'JWT' });
  expect(JSON.parse(Buffer.from(claims, 'base64url').toString())).toEqual({
    iss: key.client_email, aud: key.token_uri, scope: 'https://www.googleapis.com/auth/cloud-platform', iat: 1_700_000_000, exp: 1_700_003_600,
  });
  expect(createVerify('RSA-SHA256').update(`${header}.${claims}`).verify(createPublicKey(key.private_key), Buffer.from(signature, 'base64url'))).toBe(true);
});

test('a token is cached until shortly before it expires, shared by concurrent callers, then exchanged again', async () => {
  const tokens = accessTokens(() => now);
  const [a, b] = await Promise.all([tokens.token(key), tokens.token(key)]);
  expect(a).toMatch(/^ya29\./);
  expect(b).toBe(a);
  expect(standIn.tokenRequests).toHaveLength(1);
  // The stand-in grants 3599 s: the token is reused until REFRESH_MARGIN_MS before that.
  now += 3599_000 - REFRESH_MARGIN_MS - 1;
  expect(await tokens.token(key)).toBe(a);
  now += 1;
  const c = await tokens.token(key);
  expect(c).not.toBe(a);
  expect(standIn.tokenRequests).toHaveLength(2);
});

test('a key the token endpoint refuses is not_enabled, and the failure is not cached', async () => {
  const other = ServiceAccountKey.parse({ ...standIn.serviceAccountKey, client_email: 'someone-else@example.iam.gserviceaccount.com' });
  const tokens = accessTokens();
  await expect(tokens.token(other)).rejects.toEqual(new UpstreamError('not_enabled'));
  await expect(tokens.token(other)).rejects.toBeInstanceOf(UpstreamError);
  expect(await tokens.token(key)).toMatch(/^ya29\./);
});
