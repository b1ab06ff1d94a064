import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { CustodyEvent } from '../core/custody';
import { GatewayError } from '../core/errors';
import { formatCad } from '../core/pricing';
import type { Principal } from '../core/principal';
import { spendDay } from '../core/spend-day';
import type { Tier } from '../core/tiers';
import { logger } from '../observability';
import { recordSpendCapRejection } from '../telemetry';
import { ddb } from './ddb';
import { tableName } from './tables';
import {
  DAY_RETENTION_DAYS, dayModelPk, dayModelSk, REQUEST_RETENTION_DAYS, requestPk, requestSk, RESERVATION_PREFIX,
  retentionEnd, type RequestUsage, spendPk,
} from './usage';

/**
 * Daily spend caps. Admission is ONE conditional UpdateItem on the key's spend-day item (layout in
 * usage.ts): it adds the request's worst-case cost to `committed` and records the reservation, provided
 * `committed` stays within the cap. Conditional updates on one item are serialized by DynamoDB, so however
 * many requests race, `committed` never passes the cap.
 *
 * Reservations are top-level attributes `r#<requestId>` rather than entries of a nested map: DynamoDB cannot
 * SET a path inside a map that does not exist yet, and creating the map would cost the first request of every
 * day a second write.
 *
 * A reservation that is never settled (the invocation crashed or timed out) expires after
 * RESERVATION_TTL_SECONDS, longer than any Lambda can run; the next request that finds the key at its cap
 * releases expired reservations and retries once. Release and settle both require the reservation to still
 * exist, so exactly one of them removes it and the amount is never subtracted or counted twice.
 */
export const RESERVATION_TTL_SECONDS = 20 * 60; // Lambda's 15-minute maximum + margin

export interface Reservation {
  keyId: string;
  day: string;
  requestId: string;
  /** micro-CAD */
  amount: number;
  model: string;
  tier: Tier;
}

const epochSeconds = (d: Date) => Math.floor(d.getTime() / 1000);
const isConditionFailure = (err: unknown) => err instanceof ConditionalCheckFailedException;
const dayKey = (keyId: string, day: string) => ({ pk: spendPk(keyId), sk: day });

function capExceeded(cap: number, amount: number, resetsAt: Date): GatewayError {
  const resets_at = resetsAt.toISOString();
  const detail = amount > cap
    ? `this request alone may cost up to ${formatCad(amount)} CAD; lower max_tokens or shorten the prompt`
    : 'no more requests are admitted today';
  return new GatewayError(429,
    `This API key's daily spend cap of ${formatCad(cap)} CAD is reached: ${detail}. The cap resets at ${resets_at}.`,
    'insufficient_quota', 'daily_spend_cap_exceeded', null, { resets_at }, { 'x-should-retry': 'false' });
}

/** One attempt; false when the cap condition fails. */
async function tryReserve(r: Reservation, bound: number | null, now: Date): Promise<boolean> {
  try {
    await ddb().send(new UpdateCommand({
      TableName: tableName('usage'),
      Key: dayKey(r.keyId, r.day),
      UpdateExpression: 'SET #r = :res, expires_at = if_not_exists(expires_at, :ttl) ADD committed :amt',
      // No `a + b <= c` in condition expressions: the bound is cap - amount, computed here.
      ...(bound === null ? {} : { ConditionExpression: 'attribute_not_exists(committed) OR committed <= :bound' }),
      ExpressionAttributeNames: { '#r': RESERVATION_PREFIX + r.requestId },
      ExpressionAttributeValues: {
        ':res': { amount: r.amount, expires_at: epochSeconds(now) + RESERVATION_TTL_SECONDS },
        ':ttl': retentionEnd(now, DAY_RETENTION_DAYS),
        ':amt': r.amount,
        ...(bound === null ? {} : { ':bound': bound }),
      },
    }));
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/** Releases the reservations of a spend day whose holders must be gone; returns how many this call released. */
async function releaseExpired(keyId: string, day: string, now: Date): Promise<number> {
  const TableName = tableName('usage');
  const { Item } = await ddb().send(new GetCommand({ TableName, Key: dayKey(keyId, day), ConsistentRead: true }));
  const expired = Object.entries(Item ?? {}).filter(([name, v]) =>
    name.startsWith(RESERVATION_PREFIX) && (v as { expires_at: number }).expires_at <= epochSeconds(now));
  const released = await Promise.all(expired.map(async ([name, v]) => {
    try {
      await ddb().send(new UpdateCommand({
        TableName,
        Key: dayKey(keyId, day),
        UpdateExpression: 'REMOVE #r ADD committed :neg',
        ConditionExpression: 'attribute_exists(#r)', // another releaser or a late settle got there first
        ExpressionAttributeNames: { '#r': name },
        ExpressionAttributeValues: { ':neg': -(v as { amount: number }).amount },
      }));
      return 1;
    } catch (err) {
      if (isConditionFailure(err)) return 0;
      throw err;
    }
  }));
  const count = released.reduce((a: number, n) => a + n, 0);
  if (count > 0) logger.warn('released expired spend reservations', { keyId, day, count });
  return count;
}

/**
 * Reserves the request's worst case (micro-CAD) against the key's spend day. Throws GatewayError 429
 * (insufficient_quota / daily_spend_cap_exceeded) when the key's cap cannot take it.
 */
export async function reserve(p: Principal, requestId: string, amount: number, model: string, tier: Tier, now = new Date()): Promise<Reservation> {
  const { day, resetsAt } = spendDay(p.timezone, now);
  const r: Reservation = { keyId: p.keyId, day, requestId, amount, model, tier };
  const cap = p.maxSpendPerDay;
  if (cap === null) {
    await tryReserve(r, null, now);
    return r;
  }
  const bound = cap - amount;
  if (bound >= 0) { // a request that could never fit is refused without a write
    if (await tryReserve(r, bound, now)) return r;
    await releaseExpired(p.keyId, day, now);
    if (await tryReserve(r, bound, now)) return r;
  }
  recordSpendCapRejection(model, tier);
  throw capExceeded(cap, amount, resetsAt);
}

const sumCounts = (counts: Record<string, number | undefined>) => Object.values(counts).reduce((a: number, n) => a + (n ?? 0), 0);
const ms = (from: string, to: string) => Date.parse(to) - Date.parse(from);

/** The per-request usage record: counts, codes and timings only, never content. */
function usageRecord(r: Reservation, e: CustodyEvent): RequestUsage {
  return {
    request_id: r.requestId,
    key_id: r.keyId,
    day: r.day,
    model: r.model,
    tier: r.tier,
    route: e.route,
    jurisdiction: e.jurisdiction,
    status: e.status,
    http_status: e.http_status,
    finish_reason: e.finish_reason,
    error_code: e.error_code,
    input_tokens: e.usage.input_tokens,
    output_tokens: e.usage.output_tokens,
    cache_read_tokens: e.usage.cache_read_tokens,
    cache_write_tokens: e.usage.cache_write_tokens,
    cost_micro_cad: e.cost_micro_cad,
    ttft_ms: e.first_byte_at === null ? null : ms(e.started_at, e.first_byte_at),
    duration_ms: ms(e.started_at, e.ended_at),
    pii_substitutions: sumCounts(e.pii_substitutions),
    started_at: e.started_at,
    ended_at: new Date(e.ended_at).toISOString(),
  };
}

/** ADD clauses shared by the key's day totals and the per-model totals. */
function counters(e: CustodyEvent) {
  return {
    expression: 'requests :one, errors :err, input_tokens :in, output_tokens :out, cache_read_tokens :cr, cache_write_tokens :cw',
    values: {
      ':one': 1,
      ':err': e.status === 'error' ? 1 : 0,
      ':in': e.usage.input_tokens,
      ':out': e.usage.output_tokens,
      ':cr': e.usage.cache_read_tokens,
      ':cw': e.usage.cache_write_tokens,
    },
  };
}

/**
 * After the response (completed, failed after admission, or cancelled): turns the reservation into the actual
 * cost, then writes the request's usage record and the per-model day totals. If the reservation was already
 * released as expired, the cost is added to the day instead (released amount out, actual cost in). A repeated
 * settle of the same reservation and event after the first completed changes nothing.
 */
export async function settle(r: Reservation, e: CustodyEvent): Promise<void> {
  const TableName = tableName('usage');
  const cost = e.cost_micro_cad;
  const c = counters(e);
  const record = usageRecord(r, e);
  const now = new Date();
  const recordItem = {
    pk: requestPk(r.keyId), sk: requestSk(record.ended_at, r.requestId), ...record,
    expires_at: retentionEnd(now, REQUEST_RETENTION_DAYS),
  };

  let reservationHeld = true;
  try {
    await ddb().send(new UpdateCommand({
      TableName,
      Key: dayKey(r.keyId, r.day),
      UpdateExpression: `REMOVE #r ADD committed :delta, spent :cost, ${c.expression}`,
      ConditionExpression: 'attribute_exists(#r)',
      ExpressionAttributeNames: { '#r': RESERVATION_PREFIX + r.requestId },
      ExpressionAttributeValues: { ':delta': cost - r.amount, ':cost': cost, ...c.values },
    }));
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    reservationHeld = false;
  }

  const writes: Promise<unknown>[] = [];
  if (reservationHeld) {
    writes.push(ddb().send(new PutCommand({ TableName, Item: recordItem })));
  } else {
    // Released as expired, or settled before. The record decides: only the first writer adds to the day.
    try {
      await ddb().send(new PutCommand({ TableName, Item: recordItem, ConditionExpression: 'attribute_not_exists(pk)' }));
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      logger.warn('settle repeated for an already settled request', { requestId: r.requestId, keyId: r.keyId });
      return;
    }
    logger.warn('settled a request whose reservation had expired', { requestId: r.requestId, keyId: r.keyId, day: r.day });
    writes.push(ddb().send(new UpdateCommand({
      TableName,
      Key: dayKey(r.keyId, r.day),
      UpdateExpression: `SET expires_at = if_not_exists(expires_at, :ttl) ADD committed :cost, spent :cost, ${c.expression}`,
      ExpressionAttributeValues: { ':cost': cost, ':ttl': retentionEnd(now, DAY_RETENTION_DAYS), ...c.values },
    })));
  }
  writes.push(ddb().send(new UpdateCommand({
    TableName,
    Key: { pk: dayModelPk(r.keyId), sk: dayModelSk(r.day, r.model) },
    UpdateExpression: `SET #day = :day, #model = :model, expires_at = if_not_exists(expires_at, :ttl) ADD cost_micro_cad :cost, ${c.expression}`,
    ExpressionAttributeNames: { '#day': 'day', '#model': 'model' },
    ExpressionAttributeValues: { ':day': r.day, ':model': r.model, ':cost': cost, ':ttl': retentionEnd(now, DAY_RETENTION_DAYS), ...c.values },
  })));
  await Promise.all(writes);
}
