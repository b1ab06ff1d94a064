import { isWellFormedSecret } from '../lambdas/core/keys';
import { claimDevelopmentKey, createKey, getById, getDevelopmentKeyId, registerKey, revokeKey } from '../lambdas/store/keys';

const DEV_KEY = { name: 'development', project: 'local' } as const;

/**
 * The key `npm start` announces (the store env must already point at the local tables).
 * - NI_DEV_API_KEY set: that secret is registered (idempotently) → source 'env'.
 * - otherwise the first start creates a development key and returns its secret, to be printed once → 'created';
 *   later starts find it and return its id only → 'existing'. A revoked development key is replaced.
 */
export async function ensureDevKey(): Promise<{ keyId: string; secret?: string; source: 'created' | 'env' | 'existing' }> {
  const fromEnv = process.env.NI_DEV_API_KEY;
  if (fromEnv !== undefined) {
    // Never echo the value: it is a secret even when it is malformed.
    if (!isWellFormedSecret(fromEnv)) throw new Error('NI_DEV_API_KEY is not an API key: expected ni_live_ followed by at least 43 letters and digits');
    const { record } = await registerKey(fromEnv, DEV_KEY);
    if (record.revoked_at) throw new Error(`NI_DEV_API_KEY is key ${record.id}, which was revoked: choose another secret`);
    return { keyId: record.id, source: 'env' };
  }
  const previous = await getDevelopmentKeyId();
  const current = previous && await getById(previous);
  if (current && current.revoked_at === null) return { keyId: current.id, source: 'existing' };
  const { record, secret } = await createKey(DEV_KEY);
  if (await claimDevelopmentKey(record.id, previous)) return { keyId: record.id, secret, source: 'created' };
  // Another process started at the same moment and won: keep one development key, theirs.
  await revokeKey(record.id);
  return ensureDevKey();
}
