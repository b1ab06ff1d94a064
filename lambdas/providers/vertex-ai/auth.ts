import { createSign } from 'node:crypto';
import * as z from 'zod';
import { failureOfStatus } from '../http';
import { UpstreamError } from '../provider';

/**
 * Google access tokens from a service-account key (the `vertex_ai` provider secret, the JSON file Google issues):
 * a JWT signed with the key (RS256) is exchanged at the key's `token_uri` for an OAuth access token
 * (RFC 7523 JWT bearer grant), which is cached until shortly before it expires.
 */
export const ServiceAccountKey = z.object({
  type: z.literal('service_account'),
  project_id: z.string().min(1).optional(),
  private_key: z.string().min(1),
  client_email: z.string().min(1),
  token_uri: z.url().default('https://oauth2.googleapis.com/token'),
});
export type ServiceAccountKey = z.infer<typeof ServiceAccountKey>;

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** Google issues tokens for at most an hour; asking for that keeps exchanges rare. */
const ASSERTION_LIFETIME_S = 3600;
/** A token this close to its expiry is replaced first, so none expires during a request that uses it. */
export const REFRESH_MARGIN_MS = 5 * 60_000;

const TokenResponse = z.object({ access_token: z.string().min(1), expires_in: z.coerce.number().positive() });

const base64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** The signed JWT assertion for `key`, issued at `nowMs`. */
export function signedAssertion(key: ServiceAccountKey, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000);
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const claims = base64url(JSON.stringify({ iss: key.client_email, scope: CLOUD_PLATFORM_SCOPE, aud: key.token_uri, iat, exp: iat + ASSERTION_LIFETIME_S }));
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key.private_key);
  return `${header}.${claims}.${base64url(signature)}`;
}

/** An access token and when it expires (ms since the epoch). */
export interface IssuedToken {
  token: string;
  expiresAt: number;
}

/** Something that issues access tokens for one identity, asked again only when the last is close to expiry. */
export type TokenIssuer = () => Promise<IssuedToken>;

/**
 * Tokens by identity, cached until REFRESH_MARGIN_MS before they expire; concurrent requests share one exchange.
 * A failed exchange is not cached: the next request tries again.
 */
export function tokenCache(now: () => number = Date.now): (id: string, issue: TokenIssuer) => Promise<string> {
  const cache = new Map<string, { token: Promise<string>; refreshAt: number }>();
  return (id, issue) => {
    const cached = cache.get(id);
    if (cached && now() < cached.refreshAt) return cached.token;
    const entry = { token: Promise.resolve(''), refreshAt: Infinity };
    entry.token = issue().then((t) => {
      entry.refreshAt = t.expiresAt - REFRESH_MARGIN_MS;
      return t.token;
    });
    entry.token.catch(() => {
      if (cache.get(id) === entry) cache.delete(id);
    });
    cache.set(id, entry);
    return entry.token;
  };
}

/**
 * POSTs to one of Google's token endpoints (OAuth, STS, IAM Credentials) and parses the answer. Failures are
 * classified like any upstream failure; a credential Google refuses (400 invalid_grant, 401, 403) means the
 * gateway is not enabled there, while the client's request is fine.
 */
export async function postForToken<T>(url: string, headers: Record<string, string>, body: string, schema: z.ZodType<T>): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body });
  } catch {
    throw new UpstreamError('unavailable');
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new UpstreamError(res.status === 400 || res.status === 401 ? 'not_enabled' : failureOfStatus(res.status));
  }
  const parsed = schema.safeParse(await res.json().catch(() => null));
  if (!parsed.success) throw new UpstreamError('broken');
  return parsed.data;
}

export interface AccessTokens {
  /** A valid access token (exchanging a new assertion when the cached one is close to expiry). */
  token(key: ServiceAccountKey): Promise<string>;
}

/** Service-account tokens: a signed assertion exchanged at the key's token_uri (RFC 7523 JWT bearer grant). */
export function accessTokens(now: () => number = Date.now): AccessTokens {
  const cached = tokenCache(now);
  return {
    token(key) {
      return cached(`${key.token_uri} ${key.client_email}`, async () => {
        const issuedAt = now();
        const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: signedAssertion(key, issuedAt) });
        const t = await postForToken(key.token_uri, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), TokenResponse);
        return { token: t.access_token, expiresAt: issuedAt + t.expires_in * 1000 };
      });
    },
  };
}
