import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Lease } from '../app/ports';
import { concurrencyExceeded, requestsPerMinuteExceeded } from '../core/rate-limits';
import type { Principal } from '../core/principal';
import { applied } from './conditional';
import { ddb } from './ddb';
import { RESERVATION_TTL_SECONDS } from './spend';
import { tableName } from './tables';

/**
 * Per-key request limits in the usage table, one item per key:
 *
 *   pk = rate#<keyId>  sk = limits   minute: the clock minute (epoch minutes) `n` counts the requests of;
 *                                    active: requests in progress; `s#<requestId>`: each one's slot and when it
 *                                    expires (epoch seconds)
 *
 * Admission is one conditional UpdateItem in the common case: it adds the request to the minute's count and
 * takes its slot, provided the item's minute is the request's (or later, for a clock behind another Lambda's)
 * with room left, and a slot is free. The first request of a new minute fails that condition and takes the
 * second form, which starts the minute's count at 1. Only the parts the key has limits for are written.
 *
 * When both forms fail, a consistent read tells which limit refused. A slot whose holder died (a Lambda killed
 * mid-request) expires after RESERVATION_TTL_SECONDS, longer than any invocation runs: a key found at its
 * concurrency limit frees expired slots and tries once more, as the spend cap does. A read that finds room (the
 * item changed since the write: a slot released, the minute begun by another request) tries once more too. The item needs no TTL: its
 * minute count is overwritten, and its slots are removed when their requests end.
 */
const SLOT_PREFIX = 's#';
const SK = 'limits';
/** Reads and writes after both forms failed; only a key whose item keeps changing under it uses more than one. */
const MAX_ROUNDS = 3;

type Form = 'sameMinute' | 'newMinute';

interface LimitsItem {
  minute?: number;
  n?: number;
  active?: number;
  [slot: `${typeof SLOT_PREFIX}${string}`]: number;
}

const itemKey = (keyId: string) => ({ pk: `rate#${keyId}`, sk: SK });
const epochSeconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** The conditional update that admits `lease` under `p`'s limits, in one of its two forms. */
function admission(p: Principal, lease: Lease, form: Form, now: Date): UpdateCommand {
  const set: string[] = [];
  const add: string[] = [];
  const conditions: string[] = [];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ':one': 1 };
  if (p.requestsPerMinute !== null) {
    Object.assign(names, { '#minute': 'minute', '#n': 'n' });
    values[':minute'] = Math.floor(epochSeconds(now) / 60);
    if (form === 'sameMinute') {
      add.push('#n :one');
      conditions.push('#minute >= :minute AND #n < :rpm');
      values[':rpm'] = p.requestsPerMinute;
    } else {
      set.push('#minute = :minute', '#n = :one');
      conditions.push('(attribute_not_exists(#minute) OR #minute < :minute)');
    }
  }
  if (p.maxConcurrent !== null) {
    Object.assign(names, { '#active': 'active', '#slot': SLOT_PREFIX + lease.requestId });
    set.push('#slot = :expires');
    add.push('#active :one');
    conditions.push('(attribute_not_exists(#active) OR #active < :concurrent)');
    Object.assign(values, { ':expires': epochSeconds(now) + RESERVATION_TTL_SECONDS, ':concurrent': p.maxConcurrent });
  }
  return new UpdateCommand({
    TableName: tableName('usage'),
    Key: itemKey(p.keyId),
    UpdateExpression: [set.length && `SET ${set.join(', ')}`, add.length && `ADD ${add.join(', ')}`].filter(Boolean).join(' '),
    ConditionExpression: conditions.join(' AND '),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  });
}

/** Gives a slot back; only its first release (or its expiry) counts. */
function freeSlot(keyId: string, slot: string): Promise<boolean> {
  return applied(ddb().send(new UpdateCommand({
    TableName: tableName('usage'),
    Key: itemKey(keyId),
    UpdateExpression: 'REMOVE #s ADD active :minus',
    ConditionExpression: 'attribute_exists(#s)',
    ExpressionAttributeNames: { '#s': slot },
    ExpressionAttributeValues: { ':minus': -1 },
  })));
}

/**
 * Admits a chat completion under its key's limits, or throws 429 (`rate_limit_exceeded` with the seconds to the
 * next minute, `too_many_concurrent_requests`). A lease when the key limits requests in progress (its slot, to
 * be released), else null. A key without limits writes nothing.
 */
export async function admitRequest(p: Principal, requestId: string, now = new Date()): Promise<Lease | null> {
  const { requestsPerMinute: perMinute, maxConcurrent } = p;
  if (perMinute === null && maxConcurrent === null) return null;
  const lease: Lease = { keyId: p.keyId, requestId };
  const admitted = maxConcurrent === null ? null : lease;
  const take = (form: Form) => applied(ddb().send(admission(p, lease, form, now)));
  if (await take('sameMinute') || (perMinute !== null && await take('newMinute'))) return admitted;

  const perMinuteRefusal = () => requestsPerMinuteExceeded(perMinute!, 60 - (epochSeconds(now) % 60));
  for (let round = 1; ; round++) {
    const { Item } = await ddb().send(new GetCommand({ TableName: tableName('usage'), Key: itemKey(p.keyId), ConsistentRead: true }));
    const item = (Item ?? {}) as LimitsItem;
    const inMinute = item.minute !== undefined && item.minute >= Math.floor(epochSeconds(now) / 60);
    if (perMinute !== null && inMinute && (item.n ?? 0) >= perMinute) throw perMinuteRefusal();
    if (maxConcurrent !== null && (item.active ?? 0) >= maxConcurrent) {
      const expired = Object.entries(item).filter(([name, expires]) => name.startsWith(SLOT_PREFIX) && (expires as number) <= epochSeconds(now));
      if (!expired.length) throw concurrencyExceeded(maxConcurrent);
      await Promise.all(expired.map(([slot]) => freeSlot(p.keyId, slot)));
    }
    // Slots freed, or the item changed between the write and the read (a slot released, the minute begun by
    // another request): once more, in the form the item now calls for. A write that fails again found the item
    // changed by others' requests, which the next read sees (at a limit, it refuses there).
    if (await take(perMinute !== null && !inMinute ? 'newMinute' : 'sameMinute')) return admitted;
    if (round === MAX_ROUNDS) throw maxConcurrent !== null ? concurrencyExceeded(maxConcurrent) : perMinuteRefusal();
  }
}

/** The request has ended: its slot is free for the key's next one. */
export async function releaseRequest(lease: Lease): Promise<void> {
  await freeSlot(lease.keyId, SLOT_PREFIX + lease.requestId);
}
