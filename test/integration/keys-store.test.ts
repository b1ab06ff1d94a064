import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { hashSecret, KEY_PREFIX } from '../../lambdas/core/keys';
import { ddb } from '../../lambdas/store/ddb';
import {
  createKey, findByHash, getById, KeyIdTakenError, listKeys, registerKey, revokeKey,
} from '../../lambdas/store/keys';
import { useEmbeddedDynamo } from '../support/dynamo';

const db = useEmbeddedDynamo();

const scanAll = async () => (await ddb().send(new ScanCommand({ TableName: db().tables.keys }))).Items ?? [];

describe('keys store', () => {
  it('creates a key findable by the hash of its secret and by id', async () => {
    const { record, secret } = await createKey({ name: 'store-a', project: 'p1', max_spend_per_day: 5_000_000 });
    expect(secret.startsWith(KEY_PREFIX)).toBe(true);
    expect(record).toMatchObject({ name: 'store-a', project: 'p1', revoked_at: null, max_spend_per_day: 5_000_000 });
    expect(record.prefix).toBe(`${secret.slice(0, 12)}…`);
    expect(await findByHash(hashSecret(secret))).toEqual(record);
    expect(await getById(record.id)).toEqual(record);
    expect(await findByHash(hashSecret(`${secret}x`))).toBeUndefined();
    expect(await getById('key_doesnotexist')).toBeUndefined();
  });

  it('stores nothing from which the secret can be read', async () => {
    const created = await Promise.all([createKey({ name: 'store-b' }), createKey({ name: 'store-c', tier: 'global' })]);
    const dump = JSON.stringify(await scanAll());
    for (const { secret, record } of created) {
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(secret.slice(KEY_PREFIX.length));
      expect(dump).not.toContain(secret.slice(KEY_PREFIX.length, KEY_PREFIX.length + 12)); // not even a longer prefix
      expect(dump).toContain(hashSecret(secret));
      expect(dump).toContain(record.prefix);
    }
  });

  it('lists every key, oldest first, and revokes idempotently', async () => {
    const { record } = await createKey({ name: 'store-d' });
    const listed = await listKeys();
    expect(listed.map((r) => r.id)).toContain(record.id);
    expect(listed.map((r) => r.created_at)).toEqual([...listed.map((r) => r.created_at)].sort());

    const revoked = await revokeKey(record.id);
    expect(revoked?.revoked_at).toEqual(expect.any(String));
    expect({ ...revoked, revoked_at: null }).toEqual(record);
    const again = await revokeKey(record.id);
    expect(again?.revoked_at).toBe(revoked?.revoked_at);
    expect((await getById(record.id))?.revoked_at).toBe(revoked?.revoked_at);
    expect((await listKeys()).find((r) => r.id === record.id)?.revoked_at).toBe(revoked?.revoked_at);
    expect(await revokeKey('key_nosuchkey')).toBeUndefined();
  });

  it('rejects a colliding id without touching the existing key', async () => {
    const first = await createKey({ name: 'store-e', id: 'key_collide' });
    const before = JSON.stringify(await scanAll());
    await expect(createKey({ name: 'intruder', id: 'key_collide' })).rejects.toBeInstanceOf(KeyIdTakenError);
    expect(JSON.stringify(await scanAll())).toBe(before);
    expect(await getById('key_collide')).toEqual(first.record);
    expect(await findByHash(hashSecret(first.secret))).toEqual(first.record);
  });

  it('rejects invalid options before writing anything', async () => {
    const before = (await scanAll()).length;
    await expect(createKey({ name: 'x', tier: 'global', allowed_tiers: ['canadian_sovereign'] })).rejects.toThrow(/default tier/);
    await expect(createKey({ name: 'x', timezone: 'Nowhere/Special' })).rejects.toThrow(/time zone/);
    expect((await scanAll()).length).toBe(before);
  });

  it('registers an outside secret once', async () => {
    const secret = `${KEY_PREFIX}${'R'.repeat(43)}`;
    const first = await registerKey(secret, { name: 'registered' });
    expect(first.created).toBe(true);
    const second = await registerKey(secret, { name: 'other name' });
    expect(second).toEqual({ record: first.record, created: false });
    await expect(registerKey('sk-not-ours', { name: 'x' })).rejects.toThrow(/well-formed/);
  });
});

describe('keys by account', () => {
  it('lists an account\'s keys through its index only; keys from before accounts join the default account when migrated', async () => {
    const { createAccount } = await import('../../lambdas/store/accounts');
    const { getAccountKey, listAccountKeys, migrateKeysToAccounts } = await import('../../lambdas/store/keys');
    const { PutCommand, DeleteCommand } = await import('@aws-sdk/lib-dynamodb');
    const a = await createAccount('A');
    const b = await createAccount('B');
    const ka = await createKey({ name: 'a1', account_id: a.id });
    const kb = await createKey({ name: 'b1', account_id: b.id });
    expect((await listAccountKeys(a.id)).map((k) => k.id)).toEqual([ka.record.id]);
    expect((await listAccountKeys(b.id)).map((k) => k.id)).toEqual([kb.record.id]);
    expect(await getAccountKey(a.id, kb.record.id)).toBeUndefined();
    expect((await getAccountKey(b.id, kb.record.id))?.id).toBe(kb.record.id);

    // An index entry pointing at another account's record is not followed.
    await ddb().send(new PutCommand({ TableName: db().tables.keys, Item: { pk: `account#${a.id}`, sk: `key#${kb.record.id}`, hash: hashSecret(kb.secret) } }));
    expect((await listAccountKeys(a.id)).map((k) => k.id)).toEqual([ka.record.id]);

    // A key as written before accounts: no account_id in its record, no index entry.
    const legacy = await createKey({ name: 'legacy' });
    const { account_id: _, ...old } = legacy.record;
    await ddb().send(new PutCommand({ TableName: db().tables.keys, Item: { pk: `hash#${hashSecret(legacy.secret)}`, sk: 'key', ...old } }));
    await ddb().send(new DeleteCommand({ TableName: db().tables.keys, Key: { pk: 'account#acct_default', sk: `key#${legacy.record.id}` } }));
    expect((await getById(legacy.record.id))?.account_id).toBe('acct_default');
    expect((await listAccountKeys('acct_default')).map((k) => k.id)).not.toContain(legacy.record.id);
    expect((await migrateKeysToAccounts()).map((k) => k.id)).toEqual([legacy.record.id]);
    expect((await listAccountKeys('acct_default')).map((k) => k.id)).toContain(legacy.record.id);
    expect(await migrateKeysToAccounts()).toEqual([]);
  });
});
