import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { timingSafeEqual } from 'node:crypto';
import {
  displayPrefix, generateKeyId, generateSecret, hashSecret, isWellFormedSecret, KeyId, KeyOptions, KeyRecord,
  LimitsUpdate, newKeyRecord,
} from '../core/keys';
import type { ByokEntry, ByokProvider } from '../core/byok';
import { applied, isConditionFailure } from './conditional';
import { batchGetItems, ddb, queryAll } from './ddb';
import { tableName } from './tables';

/**
 * The keys table. Items (sk is always "key"):
 *   pk = "hash#<sha256 of the secret>"  the key record: what the authorizer reads, by the hash of what it is shown
 *   pk = "id#<keyId>"                   { hash }: lets the CLI show and revoke by id
 *   pk = "dev"                          { key_id }: the local runtime's development key
 *   pk = "account#<accountId>", sk = "key#<keyId>"   { hash }: the account's index of its keys (a query lists them)
 * Accounts and portal users live in this table too (store/accounts.ts). The secret itself is never written anywhere.
 */
const SK = 'key';
const HASH = 'hash#';
const hashPk = (hash: string) => `${HASH}${hash}`;
const idPk = (id: string) => `id#${id}`;
const DEV_PK = 'dev';
export const accountPk = (accountId: string) => `account#${accountId}`;
const ACCOUNT_KEY = 'key#';

export class KeyIdTakenError extends Error {
  constructor(id: string) {
    super(`a key with id ${id} already exists`);
  }
}

const table = () => tableName('keys');

/** Strongly consistent reads: a revocation is visible to the next lookup, so the revocation bound is the caches only. */
async function get(pk: string): Promise<Record<string, unknown> | undefined> {
  return (await ddb().send(new GetCommand({ TableName: table(), Key: { pk, sk: SK }, ConsistentRead: true }))).Item;
}

const toRecord = (item: Record<string, unknown>): KeyRecord => KeyRecord.parse(item);

async function insertKey(secret: string, opts: KeyOptions & { id?: string }): Promise<KeyRecord> {
  const id = KeyId.parse(opts.id ?? generateKeyId());
  const record = newKeyRecord(opts, { id, prefix: displayPrefix(secret), now: new Date() });
  const hash = hashSecret(secret);
  // No transactions (dynalite has none), so two conditional puts, id first: a crash in between leaves an id
  // pointing at nothing (harmless), never a working key that cannot be found by id to revoke it.
  try {
    await ddb().send(new PutCommand({
      TableName: table(), Item: { pk: idPk(id), sk: SK, hash }, ConditionExpression: 'attribute_not_exists(pk)',
    }));
  } catch (err) {
    throw isConditionFailure(err) ? new KeyIdTakenError(id) : err;
  }
  // Then the account's index entry: a crash before the record leaves an entry listing skips, never a hidden key.
  await indexInAccount(record.account_id, id, hash);
  try {
    await ddb().send(new PutCommand({
      TableName: table(), Item: { pk: hashPk(hash), sk: SK, ...record }, ConditionExpression: 'attribute_not_exists(pk)',
    }));
  } catch (err) {
    await ddb().send(new DeleteCommand({ TableName: table(), Key: { pk: idPk(id), sk: SK } }));
    throw isConditionFailure(err) ? new Error('a key with this secret already exists') : err;
  }
  return record;
}

const indexInAccount = (accountId: string, id: string, hash: string) =>
  ddb().send(new PutCommand({ TableName: table(), Item: { pk: accountPk(accountId), sk: `${ACCOUNT_KEY}${id}`, hash } }));

/**
 * One account's keys, oldest first: a query of its index, then the records by hash. A record that names another
 * account is left out, whatever the index says.
 */
export async function listAccountKeys(accountId: string): Promise<KeyRecord[]> {
  const hashes = (await queryAll({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :key)',
    ExpressionAttributeValues: { ':pk': accountPk(accountId), ':key': ACCOUNT_KEY },
  })).map((item) => String(item.hash));
  const items = await batchGetItems(table(), hashes.map((h) => ({ pk: hashPk(h), sk: SK })));
  return items.map(toRecord).filter((r) => r.account_id === accountId)
    .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

/** One of an account's keys; undefined when there is no such key or it belongs to another account. */
export async function getAccountKey(accountId: string, id: string): Promise<KeyRecord | undefined> {
  const record = await getById(id);
  return record?.account_id === accountId ? record : undefined;
}

/**
 * Puts every key without an account index entry (keys from before accounts) in its account's index (the default
 * account for records without one). A scan, once, by the operator; idempotent. Returns the keys indexed.
 */
export async function migrateKeysToAccounts(): Promise<KeyRecord[]> {
  const keys = await listKeys();
  const indexed = new Set((await batchGetItems(table(), keys.map((k) => ({ pk: accountPk(k.account_id), sk: `${ACCOUNT_KEY}${k.id}` }))))
    .map((item) => String(item.sk).slice(ACCOUNT_KEY.length)));
  const missing = keys.filter((k) => !indexed.has(k.id));
  for (const k of missing) await indexInAccount(k.account_id, k.id, (await hashOf(k.id))!);
  return missing;
}

/** A new key. The returned secret exists only in this return value: show it once, never store it. */
export async function createKey(opts: KeyOptions & { id?: string }): Promise<{ record: KeyRecord; secret: string }> {
  const secret = generateSecret();
  return { record: await insertKey(secret, opts), secret };
}

/**
 * Registers a secret chosen outside (NI_DEV_API_KEY) as a key; idempotent: a secret already registered returns
 * its existing record, whatever its options.
 */
export async function registerKey(secret: string, opts: KeyOptions): Promise<{ record: KeyRecord; created: boolean }> {
  if (!isWellFormedSecret(secret)) throw new Error(`not a well-formed API key (expected ni_live_ and base62)`);
  const existing = await findByHash(hashSecret(secret));
  if (existing) return { record: existing, created: false };
  return { record: await insertKey(secret, opts), created: true };
}

export async function findByHash(hash: string): Promise<KeyRecord | undefined> {
  const item = await get(hashPk(hash));
  return item && sameHash(String(item.pk).slice(HASH.length), hash) ? toRecord(item) : undefined;
}

/**
 * The lookup was by exact key, so a returned item should already match; the re-check guards against a store,
 * index or cache handing back the wrong item. It compares secret-derived bytes, so it is constant-time: SHA-256
 * makes a leaked hash prefix useless today, but an equality check on secret-derived values must never become
 * a timing oracle if the lookup path changes (a prefix index, a truncated hash, a different digest).
 */
function sameHash(stored: string, presented: string): boolean {
  const a = Buffer.from(stored, 'utf8');
  const b = Buffer.from(presented, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

async function hashOf(id: string): Promise<string | undefined> {
  const item = await get(idPk(id));
  return typeof item?.hash === 'string' ? item.hash : undefined;
}

export async function getById(id: string): Promise<KeyRecord | undefined> {
  const hash = await hashOf(id);
  return hash === undefined ? undefined : findByHash(hash);
}

/** Every key, oldest first (a scan: for the CLI, never on the request path). */
export async function listKeys(): Promise<KeyRecord[]> {
  const records: KeyRecord[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await ddb().send(new ScanCommand({
      TableName: table(),
      FilterExpression: 'begins_with(pk, :hash)',
      ExpressionAttributeValues: { ':hash': HASH },
      ExclusiveStartKey: start,
    }));
    for (const item of page.Items ?? []) records.push(toRecord(item));
    start = page.LastEvaluatedKey;
  } while (start);
  return records.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

/**
 * Revokes a key; idempotent (a second call keeps the first revocation time). Undefined if there is no such key.
 */
export async function revokeKey(id: string): Promise<KeyRecord | undefined> {
  const hash = await hashOf(id);
  if (hash === undefined) return undefined;
  try {
    const out = await ddb().send(new UpdateCommand({
      TableName: table(),
      Key: { pk: hashPk(hash), sk: SK },
      UpdateExpression: 'SET revoked_at = :now',
      // revoked_at holds NULL until revoked: only the first revocation writes its time.
      ConditionExpression: '#id = :id AND attribute_type(revoked_at, :null)',
      ExpressionAttributeNames: { '#id': 'id' },
      ExpressionAttributeValues: { ':now': new Date().toISOString(), ':id': id, ':null': 'NULL' },
      ReturnValues: 'ALL_NEW',
    }));
    return out.Attributes && toRecord(out.Attributes);
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    const record = await findByHash(hash); // already revoked
    return record?.id === id ? record : undefined;
  }
}

/**
 * Sets a key's request limits (each one given; null: no limit) in the record the authorizer reads, so the change
 * reaches requests within the key caches' TTL. One conditional write: the key must exist. Undefined if it does not.
 */
export async function updateLimits(id: string, update: LimitsUpdate): Promise<KeyRecord | undefined> {
  const hash = await hashOf(id);
  if (hash === undefined) return undefined;
  const values = Object.fromEntries(Object.entries(LimitsUpdate.parse(update)).filter(([, v]) => v !== undefined));
  if (!Object.keys(values).length) return findByHash(hash);
  try {
    const out = await ddb().send(new UpdateCommand({
      TableName: table(),
      Key: { pk: hashPk(hash), sk: SK },
      UpdateExpression: `SET ${Object.keys(values).map((f) => `${f} = :${f}`).join(', ')}`,
      ConditionExpression: '#id = :id',
      ExpressionAttributeNames: { '#id': 'id' },
      ExpressionAttributeValues: { ':id': id, ...Object.fromEntries(Object.entries(values).map(([f, v]) => [`:${f}`, v])) },
      ReturnValues: 'ALL_NEW',
    }));
    return out.Attributes && toRecord(out.Attributes);
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
}

/**
 * Sets (entry) or clears (null) a key's BYOK entry for one provider, in the key record the authorizer reads, so the
 * change reaches requests within the key caches' TTL. Undefined if there is no such key.
 */
export async function updateByok(id: string, provider: ByokProvider, entry: ByokEntry | null): Promise<KeyRecord | undefined> {
  const hash = await hashOf(id);
  if (hash === undefined) return undefined;
  const update = (UpdateExpression: string, byokType: 'M' | 'NULL', values: Record<string, unknown>) => ddb().send(new UpdateCommand({
    TableName: table(),
    Key: { pk: hashPk(hash), sk: SK },
    UpdateExpression,
    ConditionExpression: '#id = :id AND attribute_type(byok, :type)',
    ExpressionAttributeNames: { '#id': 'id', ...(byokType === 'M' ? { '#p': provider } : {}) },
    ExpressionAttributeValues: { ':id': id, ':type': byokType, ...values },
    ReturnValues: 'ALL_NEW',
  })).then((out) => out.Attributes && toRecord(out.Attributes), (err) => {
    if (isConditionFailure(err)) return null;
    throw err;
  });
  // A record holds a map once a first entry was set, NULL before: each form has its update, and a race between
  // two writers is settled by the type condition (the loser reads again and takes the other form).
  for (let attempt = 0; attempt < 3; attempt++) {
    const done = await update(entry ? 'SET byok.#p = :entry' : 'REMOVE byok.#p', 'M', entry ? { ':entry': entry } : {});
    if (done) return done;
    const record = await findByHash(hash);
    if (!record || record.id !== id) return undefined;
    if (record.byok !== null) continue;
    if (!entry) return record;
    const first = await update('SET byok = :entries', 'NULL', { ':entries': { [provider]: entry } });
    if (first) return first;
  }
  throw new Error(`the BYOK settings of ${id} kept changing under this update; try again`);
}

/** The id the local runtime's development key was created under, if any (it may since have been revoked). */
export async function getDevelopmentKeyId(): Promise<string | undefined> {
  const id = (await get(DEV_PK))?.key_id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Makes `id` the development key unless another process set one first (replacing `previous`, a revoked one,
 * is allowed). False when someone else won: use theirs.
 */
export async function claimDevelopmentKey(id: string, previous?: string): Promise<boolean> {
  return applied(ddb().send(new PutCommand({
    TableName: table(),
    Item: { pk: DEV_PK, sk: SK, key_id: id },
    ConditionExpression: previous ? 'key_id = :previous' : 'attribute_not_exists(pk)',
    ...(previous ? { ExpressionAttributeValues: { ':previous': previous } } : {}),
  })));
}
