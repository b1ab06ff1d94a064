import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Lease } from '../app/ports';
import { concurrencyExceeded, rateLimitsOf, requestsPerMinuteExceeded } from '../core/rate-limits';
import type { Principal } from '../core/principal';
import { applied } from './conditional';
import { ddb } from './ddb';
import { RESERVATION_TTL_SECONDS } from './spend';
import { tableName } from './tables';

/**
 * Per-key request limits in the usage table, each one conditional single-item write:
 *
 *   pk = rate#<keyId>  sk = minute#<epoch minute>  n: requests admitted in that clock minute (kept an hour)
 *   pk = rate#<keyId>  sk = inflight               active: requests in progress; `s#<requestId>`: each one's
 *                                                  slot and when it expires
 *
 * A slot whose holder died (a Lambda killed mid-request) expires after RESERVATION_TTL_SECONDS, longer than any
 * invocation runs; a key found at its limit releases expired slots and tries once more, as the spend cap does.
 * Minute items are never read, so the store needs no TTL to be correct.
 */
const SLOT_PREFIX = 's#';
const MINUTE_ITEM_TTL_SECONDS = 3600;

const rateKey = (keyId: string, sk: string) => ({ pk: `rate#${keyId}`, sk });
const epochSeconds = (d: Date) => Math.floor(d.getTime() / 1000);

function countMinute(keyId: string, limit: number, now: Date): Promise<boolean> {
  const minute = Math.floor(epochSeconds(now) / 60);
  return applied(ddb().send(new UpdateCommand({
    TableName: tableName('usage'),
    Key: rateKey(keyId, `minute#${minute}`),
    UpdateExpression: 'SET expires_at = if_not_exists(expires_at, :ttl) ADD n :one',
    ConditionExpression: 'attribute_not_exists(n) OR n < :limit',
    ExpressionAttributeValues: { ':ttl': (minute + 1) * 60 + MINUTE_ITEM_TTL_SECONDS, ':one': 1, ':limit': limit },
  })));
}

function takeSlot(lease: Lease, limit: number, now: Date): Promise<boolean> {
  return applied(ddb().send(new UpdateCommand({
    TableName: tableName('usage'),
    Key: rateKey(lease.keyId, 'inflight'),
    UpdateExpression: 'SET #s = :expires ADD active :one',
    ConditionExpression: 'attribute_not_exists(active) OR active < :limit',
    ExpressionAttributeNames: { '#s': SLOT_PREFIX + lease.requestId },
    ExpressionAttributeValues: { ':expires': epochSeconds(now) + RESERVATION_TTL_SECONDS, ':one': 1, ':limit': limit },
  })));
}

/** Gives a slot back; only its first release (or its expiry) counts. */
function freeSlot(keyId: string, slot: string): Promise<boolean> {
  return applied(ddb().send(new UpdateCommand({
    TableName: tableName('usage'),
    Key: rateKey(keyId, 'inflight'),
    UpdateExpression: 'REMOVE #s ADD active :minus',
    ConditionExpression: 'attribute_exists(#s)',
    ExpressionAttributeNames: { '#s': slot },
    ExpressionAttributeValues: { ':minus': -1 },
  })));
}

async function freeExpiredSlots(keyId: string, now: Date): Promise<void> {
  const { Item } = await ddb().send(new GetCommand({ TableName: tableName('usage'), Key: rateKey(keyId, 'inflight'), ConsistentRead: true }));
  const expired = Object.entries(Item ?? {}).filter(([name, expires]) => name.startsWith(SLOT_PREFIX) && (expires as number) <= epochSeconds(now));
  await Promise.all(expired.map(([slot]) => freeSlot(keyId, slot)));
}

/**
 * Admits a chat completion under its key's limits, or throws 429 (`rate_limit_exceeded` with the seconds to the
 * next minute, `too_many_concurrent_requests`). The two writes go out together; a request refused by one gives
 * back what the other took.
 */
export async function admitRequest(p: Principal, requestId: string, now = new Date()): Promise<Lease | null> {
  const { requestsPerMinute, maxConcurrent } = rateLimitsOf(p);
  const lease: Lease = { keyId: p.keyId, requestId };
  const slot = async (limit: number) => (await takeSlot(lease, limit, now))
    || (await freeExpiredSlots(p.keyId, now), takeSlot(lease, limit, now));
  const [inMinute, inFlight] = await Promise.all([
    requestsPerMinute === null || countMinute(p.keyId, requestsPerMinute, now),
    maxConcurrent === null || slot(maxConcurrent),
  ]);
  if (inMinute && inFlight) return maxConcurrent === null ? null : lease;
  if (inFlight && maxConcurrent !== null) await releaseRequest(lease);
  if (!inMinute) throw requestsPerMinuteExceeded(requestsPerMinute!, 60 - (epochSeconds(now) % 60));
  throw concurrencyExceeded(maxConcurrent!);
}

/** The request has ended: its slot is free for the key's next one. */
export async function releaseRequest(lease: Lease): Promise<void> {
  await freeSlot(lease.keyId, SLOT_PREFIX + lease.requestId);
}
