import { CognitoJwtVerifier } from 'aws-jwt-verify';
import type { JwksCache } from 'aws-jwt-verify/jwk';
import * as z from 'zod';
import { config } from '../config';
import { badRequest, GatewayError } from '../core/errors';

/**
 * How portal users sign in. In AWS: the stack's Cognito user pool (authorization code flow with PKCE; the page
 * sends the code here, which exchanges it at the pool's token endpoint, so the page talks to its own origin only)
 * and its access tokens, verified with aws-jwt-verify. The local runtime signs its user in with one-time links
 * instead (local/portal-auth.ts).
 */
export interface PortalAuthenticator {
  /** What the page needs to start signing in. */
  readonly signInConfig: { mode: 'cognito'; authorize_url: string; logout_url: string; client_id: string; scope: string } | { mode: 'local' };
  /** What the sign-in flow returned (a code) → a bearer token for the portal API. */
  signIn(body: unknown): Promise<{ token: string; expires_in: number }>;
  /** The user behind a bearer token, or null when it is not valid (expired, forged, another pool's). */
  authenticate(token: string): Promise<{ userId: string } | null>;
}

const SCOPE = 'openid email';
const CodeExchange = z.object({
  code: z.string().min(1).max(2048),
  code_verifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/, 'a PKCE code verifier (RFC 7636)'),
  redirect_uri: z.url(),
}).strict();

/**
 * `jwksCache`: where the pool's signing keys come from (default: fetched from the pool's JWKS URI and cached for the
 * life of the environment).
 */
export function cognitoAuthenticator(settings: { userPoolId: string; clientId: string; domain: string }, opts: { jwksCache?: JwksCache } = {}): PortalAuthenticator {
  const verifier = CognitoJwtVerifier.create({ userPoolId: settings.userPoolId, tokenUse: 'access', clientId: settings.clientId },
    opts.jwksCache ? { jwksCache: opts.jwksCache } : undefined);
  return {
    signInConfig: {
      mode: 'cognito', authorize_url: `${settings.domain}/oauth2/authorize`, logout_url: `${settings.domain}/logout`, client_id: settings.clientId, scope: SCOPE,
    },
    async signIn(body) {
      const parsed = CodeExchange.safeParse(body);
      if (!parsed.success) throw badRequest(`Invalid sign-in: ${parsed.error.issues[0].message}`, parsed.error.issues[0].path.join('.'));
      const res = await fetch(`${settings.domain}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', client_id: settings.clientId, ...parsed.data }).toString(),
        signal: AbortSignal.timeout(10_000),
      });
      const out = await res.json().catch(() => ({})) as { access_token?: string; expires_in?: number };
      if (!res.ok || !out.access_token) throw new GatewayError(401, 'The sign-in code was refused; sign in again.', 'authentication_error', 'sign_in_failed');
      return { token: out.access_token, expires_in: out.expires_in ?? 3600 };
    },
    async authenticate(token) {
      try {
        return { userId: (await verifier.verify(token)).sub };
      } catch {
        return null;
      }
    },
  };
}

/** The authenticator the stack configures; null when the portal has no user pool (then only the local runtime signs in). */
export function configuredAuthenticator(): PortalAuthenticator | null {
  const cognito = config().portal.cognito;
  return cognito ? cognitoAuthenticator(cognito) : null;
}
