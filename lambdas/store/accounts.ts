import { GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { Account, DEFAULT_ACCOUNT_ID, generateAccountId, PortalUser } from '../core/accounts';
import { applied } from './conditional';
import { ddb } from './ddb';
import { accountPk } from './keys';
import { tableName } from './tables';

/**
 * Accounts and portal users, in the keys table (beside each account's key index, store/keys.ts):
 *   pk = "account#<accountId>", sk = "account"        the account
 *   pk = "account#<accountId>", sk = "user#<userId>"  { email }: the account's users
 *   pk = "user#<userId>",       sk = "user"           the user, with its account: what the portal reads per request
 */
const ACCOUNT_SK = 'account';
const USER_SK = 'user';
const userPk = (id: string) => `user#${id}`;
const table = () => tableName('keys');

export class AccountExistsError extends Error {}

export async function createAccount(name: string, id = generateAccountId(), now = new Date()): Promise<Account> {
  const account = Account.parse({ id, name, created_at: now.toISOString() });
  const put = new PutCommand({
    TableName: table(), Item: { pk: accountPk(account.id), sk: ACCOUNT_SK, ...account }, ConditionExpression: 'attribute_not_exists(pk)',
  });
  if (!await applied(ddb().send(put))) throw new AccountExistsError(`account ${account.id} already exists`);
  return account;
}

export async function getAccount(id: string): Promise<Account | undefined> {
  const item = (await ddb().send(new GetCommand({ TableName: table(), Key: { pk: accountPk(id), sk: ACCOUNT_SK }, ConsistentRead: true }))).Item;
  return item && Account.parse(item);
}

/** The default account, which keys from before accounts belong to; created on first use. */
export async function ensureDefaultAccount(): Promise<Account> {
  const existing = await getAccount(DEFAULT_ACCOUNT_ID);
  if (existing) return existing;
  try {
    return await createAccount('Default account', DEFAULT_ACCOUNT_ID);
  } catch (err) {
    if (err instanceof AccountExistsError) return (await getAccount(DEFAULT_ACCOUNT_ID))!;
    throw err;
  }
}

/** Every account (a filtered scan: for the operator's CLI, never on a request path). */
export async function listAccounts(): Promise<Account[]> {
  const accounts: Account[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await ddb().send(new ScanCommand({
      TableName: table(), FilterExpression: 'sk = :sk', ExpressionAttributeValues: { ':sk': ACCOUNT_SK }, ExclusiveStartKey: start,
    }));
    for (const item of page.Items ?? []) accounts.push(Account.parse(item));
    start = page.LastEvaluatedKey;
  } while (start);
  return accounts.sort((a, b) => a.created_at.localeCompare(b.created_at));
}

/** Adds a user (already created in the identity provider, or a local one) to an existing account. */
export async function addUser(user: { id: string; account_id: string; email: string }, now = new Date()): Promise<PortalUser> {
  if (!await getAccount(user.account_id)) throw new Error(`no account ${user.account_id}`);
  const record = PortalUser.parse({ ...user, email: user.email.toLowerCase(), created_at: now.toISOString() });
  const put = new PutCommand({ TableName: table(), Item: { pk: userPk(record.id), sk: USER_SK, ...record }, ConditionExpression: 'attribute_not_exists(pk)' });
  if (!await applied(ddb().send(put))) throw new Error(`user ${record.id} already belongs to an account`);
  await ddb().send(new PutCommand({ TableName: table(), Item: { pk: accountPk(record.account_id), sk: `user#${record.id}`, email: record.email } }));
  return record;
}

export async function getUser(id: string): Promise<PortalUser | undefined> {
  const item = (await ddb().send(new GetCommand({ TableName: table(), Key: { pk: userPk(id), sk: USER_SK }, ConsistentRead: true }))).Item;
  return item && PortalUser.parse(item);
}

/** An account's users (a query of its partition). */
export async function listUsers(accountId: string): Promise<{ id: string; email: string }[]> {
  const out = await ddb().send(new QueryCommand({
    TableName: table(), KeyConditionExpression: 'pk = :pk AND begins_with(sk, :u)',
    ExpressionAttributeValues: { ':pk': accountPk(accountId), ':u': 'user#' }, ConsistentRead: true,
  }));
  return (out.Items ?? []).map((i) => ({ id: String(i.sk).slice('user#'.length), email: String(i.email) }));
}
