import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { createHash, randomBytes } from 'node:crypto';
import * as z from 'zod';
import { DEFAULT_ACCOUNT_ID, type PortalUser } from '../lambdas/core/accounts';
import { badRequest, GatewayError } from '../lambdas/core/errors';
import type { PortalAuthenticator } from '../lambdas/portal/auth';
import { addUser, ensureDefaultAccount, getUser } from '../lambdas/store/accounts';
import { ddb } from '../lambdas/store/ddb';
import { tableName } from '../lambdas/store/tables';

/*
 * Portal sign-in without Cognito, for the local runtime only: one-time sign-in codes (the link `npm start` and
 * `ni accounts invite` print) exchanged for session tokens. Both are kept as SHA-256 hashes in the keys table,
 * with their expiry; a code is deleted as it is used.
 */
const CODE_TTL_S = 24 * 3600;
const SESSION_TTL_S = 12 * 3600;
const hash = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const secret = () => randomBytes(32).toString('base64url');
const table = () => tableName('keys');

/** The user `npm start` signs in: the local operator, in the default account. */
export const LOCAL_OPERATOR = { id: 'local_operator', email: 'operator@ni.local' } as const;

export async function ensureLocalOperator(): Promise<PortalUser> {
  await ensureDefaultAccount();
  return (await getUser(LOCAL_OPERATOR.id)) ?? addUser({ ...LOCAL_OPERATOR, account_id: DEFAULT_ACCOUNT_ID });
}

/** A single-use code signing `userId` in, valid for a day: the portal link carries it as `#signin=<code>`. */
export async function createSignInCode(userId: string, now = new Date()): Promise<string> {
  const code = secret();
  await ddb().send(new PutCommand({
    TableName: table(),
    Item: { pk: `signin#${hash(code)}`, sk: 'signin', user_id: userId, expires_at: Math.floor(now.getTime() / 1000) + CODE_TTL_S },
  }));
  return code;
}

export const signInPath = (code: string) => `/portal/#signin=${code}`;

const Exchange = z.object({ code: z.string().regex(/^[A-Za-z0-9_-]{20,100}$/) }).strict();

export function localPortalAuthenticator(now: () => Date = () => new Date()): PortalAuthenticator {
  const epoch = () => Math.floor(now().getTime() / 1000);
  return {
    signInConfig: { mode: 'local' },
    async signIn(body) {
      const parsed = Exchange.safeParse(body);
      if (!parsed.success) throw badRequest('Invalid sign-in code.', 'code');
      // Deleted as it is read: a code works once.
      const used = (await ddb().send(new DeleteCommand({
        TableName: table(), Key: { pk: `signin#${hash(parsed.data.code)}`, sk: 'signin' }, ReturnValues: 'ALL_OLD',
      }))).Attributes;
      if (!used || Number(used.expires_at) <= epoch()) {
        throw new GatewayError(401, 'This sign-in link was used already or has expired: restart `npm start` or run `npx ni accounts invite` for a new one.', 'authentication_error', 'sign_in_failed');
      }
      const token = secret();
      await ddb().send(new PutCommand({
        TableName: table(), Item: { pk: `session#${hash(token)}`, sk: 'session', user_id: used.user_id, expires_at: epoch() + SESSION_TTL_S },
      }));
      return { token, expires_in: SESSION_TTL_S };
    },
    async authenticate(token) {
      const item = (await ddb().send(new GetCommand({ TableName: table(), Key: { pk: `session#${hash(token)}`, sk: 'session' }, ConsistentRead: true }))).Item;
      return item && Number(item.expires_at) > epoch() ? { userId: String(item.user_id) } : null;
    },
  };
}
