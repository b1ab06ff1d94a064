import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPortal } from '../../portal/build';
import { createAccount, addUser } from '../../lambdas/store/accounts';
import { createSignInCode } from '../../local/portal-auth';

/** A new account with one user, and a one-time sign-in code for that user (the link's `#signin=`). */
export async function portalAccount(name: string) {
  const account = await createAccount(name);
  const user = await addUser({ id: `u_${account.id}`, account_id: account.id, email: `${name.toLowerCase()}@example.ca` });
  return { account, user, code: await createSignInCode(user.id) };
}

/** A portal user of a new account, signed in through the local runtime's one-time link: a fetch for its API. */
export async function portalUser(baseUrl: string, name: string) {
  const { account, user, code } = await portalAccount(name);
  const res = await fetch(`${baseUrl}/api/portal/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
  const { token } = await res.json() as { token: string };
  const call = (method: string, path: string, body?: unknown) => fetch(`${baseUrl}/api/portal/${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { account, user, token, code, call, json: async <T = any>(method: string, path: string, body?: unknown): Promise<T> => (await call(method, path, body)).json() as Promise<T> };
}

/** Builds the portal's pages into a temp dir for this test file and points the assets handler at it (before the gateway starts). */
export async function buildTestPortal(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'ni-portal-')), 'portal');
  await buildPortal(dir);
  process.env.NI_PORTAL_ASSETS_DIR = dir;
  return dir;
}
