import { generateSecret, hashSecret } from '../../lambdas/core/keys';
import { findByHash, getById, revokeKey } from '../../lambdas/store/keys';
import { ensureDevKey } from '../../local/dev-key';
import { useEmbeddedDynamo } from '../support/dynamo';
import { reloadConfig } from '../../lambdas/config';

beforeEach(() => {
  delete process.env.NI_DEV_API_KEY;
  reloadConfig();
});

useEmbeddedDynamo({ perTest: true });

afterEach(() => {
  delete process.env.NI_DEV_API_KEY;
  reloadConfig();
});

describe('ensureDevKey', () => {
  it('creates a development key on first start, then finds it without its secret', async () => {
    const first = await ensureDevKey();
    expect(first.source).toBe('created');
    expect(first.secret).toMatch(/^ni_live_[0-9A-Za-z]{43}$/);
    expect((await findByHash(hashSecret(first.secret!)))?.id).toBe(first.keyId);
    expect(await getById(first.keyId)).toMatchObject({ name: 'development', revoked_at: null });

    const second = await ensureDevKey();
    expect(second).toEqual({ keyId: first.keyId, source: 'existing' });
  });

  it('replaces a revoked development key', async () => {
    const first = await ensureDevKey();
    await revokeKey(first.keyId);
    const next = await ensureDevKey();
    expect(next.source).toBe('created');
    expect(next.keyId).not.toBe(first.keyId);
    expect(await ensureDevKey()).toEqual({ keyId: next.keyId, source: 'existing' });
  });

  it('keeps one development key when two starts race', async () => {
    const [a, b] = await Promise.all([ensureDevKey(), ensureDevKey()]);
    const winner = (await ensureDevKey()).keyId;
    for (const r of [a, b]) expect(r.keyId).toBe(winner);
    expect([a.source, b.source].sort()).toEqual(['created', 'existing']);
  });

  it('registers NI_DEV_API_KEY idempotently', async () => {
    const secret = generateSecret();
    process.env.NI_DEV_API_KEY = secret;
    reloadConfig();
    const first = await ensureDevKey();
    expect(first).toEqual({ keyId: expect.stringMatching(/^key_/), source: 'env' });
    expect((await findByHash(hashSecret(secret)))?.id).toBe(first.keyId);
    expect(await ensureDevKey()).toEqual(first);
  });

  it('refuses a malformed or revoked NI_DEV_API_KEY without echoing it', async () => {
    process.env.NI_DEV_API_KEY = 'sk-my-openai-key-1234567890';
    reloadConfig();
    const malformed = await ensureDevKey().catch((e: Error) => e);
    expect((malformed as Error).message).toMatch(/NI_DEV_API_KEY is not an API key/);
    expect((malformed as Error).message).not.toContain('sk-my-openai');

    const secret = generateSecret();
    process.env.NI_DEV_API_KEY = secret;
    reloadConfig();
    await revokeKey((await ensureDevKey()).keyId);
    await expect(ensureDevKey()).rejects.toThrow(/revoked/);
  });
});
