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

export interface AccessTokens {
  /** A valid access token (exchanging a new assertion when the cached one is close to expiry). */
  token(key: ServiceAccountKey): Promise<string>;
}

/**
 * Tokens per service account, cached; concurrent requests share one exchange. A failed exchange is classified
 * like any upstream failure (a refused key is `not_enabled`) and not cached.
 */
export function accessTokens(now: () => number = Date.now): AccessTokens {
  const cache = new Map<string, { token: Promise<string>; refreshAt: number }>();

  async function exchange(key: ServiceAccountKey, entry: { refreshAt: number }): Promise<string> {
    const issuedAt = now();
    let res: Response;
    try {
      res = await fetch(key.token_uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: signedAssertion(key, issuedAt) }),
      });
    } catch {
      throw new UpstreamError('unavailable');
    }
    // A key Google refuses (revoked, wrong account) answers 400 invalid_grant: the gateway is not enabled, the client's request is fine.
    if (!res.ok) throw new UpstreamError(res.status === 400 || res.status === 401 ? 'not_enabled' : failureOfStatus(res.status));
    const parsed = TokenResponse.safeParse(await res.json().catch(() => null));
    if (!parsed.success) throw new UpstreamError('broken');
    entry.refreshAt = issuedAt + parsed.data.expires_in * 1000 - REFRESH_MARGIN_MS;
    return parsed.data.access_token;
  }

  return {
    token(key) {
      const id = `${key.token_uri} ${key.client_email}`;
      const cached = cache.get(id);
      if (cached && now() < cached.refreshAt) return cached.token;
      const entry = { token: Promise.resolve(''), refreshAt: Infinity };
      entry.token = exchange(key, entry);
      entry.token.catch(() => {
        if (cache.get(id) === entry) cache.delete(id);
      });
      cache.set(id, entry);
      return entry.token;
    },
  };
}
