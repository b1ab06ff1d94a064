import { api, PORTAL_BASE, token } from './api';

/*
 * Signing in. Locally: the one-time link `npm start` prints (#signin=CODE) is exchanged for a session token. In
 * AWS: Cognito's authorization code flow with PKCE; the code comes back to this page, which hands it with its
 * verifier to the portal API (same origin), which exchanges it with Cognito.
 */
type SignInConfig = { mode: 'local' } | { mode: 'cognito'; authorize_url: string; logout_url: string; client_id: string; scope: string };

const PKCE = 'ni.portal.pkce';
const redirectUri = () => PORTAL_BASE.href;

const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = (n: number) => base64url(crypto.getRandomValues(new Uint8Array(n)));

/** Finishes a sign-in this page was sent back with; true when the tab now holds a token. */
export async function completeSignIn(): Promise<boolean> {
  const hash = new URLSearchParams(location.hash.slice(1));
  const code = hash.get('signin');
  if (code) {
    history.replaceState(null, '', `${location.pathname}${location.search}#/keys`); // the code is single-use: out of the address bar
    const { token: t } = await api.post<{ token: string }>('session', { code });
    token.set(t);
    return true;
  }
  const query = new URLSearchParams(location.search);
  const pkce = JSON.parse(sessionStorage.getItem(PKCE) ?? 'null') as { verifier: string; state: string } | null;
  if (query.get('code') && pkce) {
    sessionStorage.removeItem(PKCE);
    history.replaceState(null, '', `${location.pathname}#/keys`);
    if (query.get('state') !== pkce.state) throw new Error('The sign-in answer does not match the request this tab made; sign in again.');
    const { token: t } = await api.post<{ token: string }>('session', { code: query.get('code'), code_verifier: pkce.verifier, redirect_uri: redirectUri() });
    token.set(t);
    return true;
  }
  return Boolean(token.get());
}

export async function startSignIn(): Promise<string | null> {
  const config = await api.get<SignInConfig>('config');
  if (config.mode === 'local') return 'Use the sign-in link `npm start` printed (Portal: http://127.0.0.1:…/portal/#signin=…), or `npx ni accounts invite`.';
  const verifier = random(48);
  const state = random(16);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state }));
  const url = new URL(config.authorize_url);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: config.client_id, redirect_uri: redirectUri(), scope: config.scope,
    state, code_challenge: challenge, code_challenge_method: 'S256',
  }).toString();
  location.assign(url.href);
  return null;
}

/** Forgets the tab's token and, with Cognito, ends the sign-in page's session too (else "Sign in" would not ask again). */
export async function signOut(): Promise<void> {
  token.clear();
  const config = await api.get<SignInConfig>('config').catch(() => null);
  if (config?.mode !== 'cognito') return;
  const url = new URL(config.logout_url);
  url.search = new URLSearchParams({ client_id: config.client_id, logout_uri: redirectUri() }).toString();
  location.assign(url.href);
}
