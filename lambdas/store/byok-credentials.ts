import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { CustomerCredentials } from '../app/ports';
import type { ByokProvider } from '../core/byok';
import { ddb } from './ddb';
import { openSecret } from './byok-keyring';
import { tableName } from './tables';

/**
 * The gateway's side of BYOK: opening customers' credentials per request, and noting when each was last used.
 *
 * An opened secret is kept in memory for `ttlMs` (the key cache's TTL), under its envelope: a rotated credential
 * is a new envelope, so what bounds a rotation or a clearing is the key record's caches, never this one; this one
 * only spares KMS a Decrypt per request, and keeps no secret longer than a key record is trusted.
 *
 * Last use: `pk = byok#<keyId>`, `sk = <provider>` in the usage table, { fingerprint, last_used_at }, written after
 * the response at most once a minute per credential and execution environment (to the minute is what `ni keys byok
 * show` needs, and a write per request would cost every request a store call).
 */
const MAX_OPENED = 1_000;
export const LAST_USED_RESOLUTION_MS = 60_000;

const lastUsedPk = (keyId: string) => `byok#${keyId}`;

export function createCustomerCredentials({ ttlMs, now }: { ttlMs: number; now: () => number }): CustomerCredentials {
  const opened = new Map<string, { secret: Promise<string>; expires: number }>();
  const noted = new Map<string, number>();
  return {
    open(keyId, provider, { envelope }) {
      const id = `${keyId}\n${provider}\n${envelope.wrapped_key}\n${envelope.ciphertext}`;
      const hit = opened.get(id);
      if (hit && hit.expires > now()) return hit.secret;
      opened.delete(id);
      const secret = openSecret(keyId, provider, envelope);
      if (ttlMs > 0) {
        if (opened.size >= MAX_OPENED) opened.delete(opened.keys().next().value!); // oldest first
        opened.set(id, { secret, expires: now() + ttlMs });
        secret.catch(() => opened.delete(id)); // a failed open is tried again by the next request
      }
      return secret;
    },
    async used(keyId, provider, fingerprint) {
      const id = `${keyId}\n${provider}\n${fingerprint}`;
      const at = now();
      if ((noted.get(id) ?? -Infinity) + LAST_USED_RESOLUTION_MS > at) return;
      noted.set(id, at);
      if (noted.size > MAX_OPENED) noted.delete(noted.keys().next().value!);
      await markUsed(keyId, provider, fingerprint, new Date(at)).catch(() => noted.delete(id));
    },
  };
}

async function markUsed(keyId: string, provider: ByokProvider, fingerprint: string, at: Date): Promise<void> {
  await ddb().send(new PutCommand({
    TableName: tableName('usage'),
    Item: { pk: lastUsedPk(keyId), sk: provider, fingerprint, last_used_at: at.toISOString() },
  }));
}

/** When each of a key's credentials was last used: only for the credential (fingerprint) now set, by provider. */
export async function byokLastUsed(keyId: string): Promise<Partial<Record<ByokProvider, { fingerprint: string; last_used_at: string }>>> {
  const out = await ddb().send(new QueryCommand({
    TableName: tableName('usage'),
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': lastUsedPk(keyId) },
    ConsistentRead: true,
  }));
  return Object.fromEntries((out.Items ?? []).map((i) => [i.sk, { fingerprint: String(i.fingerprint), last_used_at: String(i.last_used_at) }]));
}
