import { BatchWriteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Reservation } from '../app/ports';
import type { CustodyEvent } from '../core/custody';
import { GatewayError } from '../core/errors';
import { formatCad, type UsageBasis } from '../core/pricing';
import type { Principal } from '../core/principal';
import { spendDay } from '../core/spend-day';
import type { Tier } from '../core/tiers';
import { logger, recordSpendCapRejection } from '../observability';
import { batches, groupBy } from './batching';
import { applied } from './conditional';
import { ddb } from './ddb';
import { afterWindow } from './group-commit';
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
 * exist, so exactly one of them removes it and the amount is never subtracted or counted twice. A reservation
 * marked `kept` (its request ended but could not be settled, see keep()) is never released.
 */
export const RESERVATION_TTL_SECONDS = 20 * 60; // Lambda's 15-minute maximum + margin


const epochSeconds = (d: Date) => Math.floor(d.getTime() / 1000);
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
  return applied(ddb().send(new UpdateCommand({
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
  })));
}

/** Removes one reservation and its amount from the day; false when it was already gone (released or settled). */
function releaseReservation(keyId: string, day: string, name: string, amount: number): Promise<boolean> {
  return applied(ddb().send(new UpdateCommand({
    TableName: tableName('usage'),
    Key: dayKey(keyId, day),
    UpdateExpression: 'REMOVE #r ADD committed :neg',
    ConditionExpression: 'attribute_exists(#r)', // another releaser or a late settle got there first
    ExpressionAttributeNames: { '#r': name },
    ExpressionAttributeValues: { ':neg': -amount },
  })));
}

/** Releases the reservations of a spend day whose holders must be gone; returns how many this call released. */
async function releaseExpired(keyId: string, day: string, now: Date): Promise<number> {
  const { Item } = await ddb().send(new GetCommand({ TableName: tableName('usage'), Key: dayKey(keyId, day), ConsistentRead: true }));
  const expired = Object.entries(Item ?? {}).filter(([name, v]) => {
    const r = v as { expires_at: number; kept?: boolean };
    return name.startsWith(RESERVATION_PREFIX) && !r.kept && r.expires_at <= epochSeconds(now);
  });
  const released = await Promise.all(expired.map(([name, v]) => releaseReservation(keyId, day, name, (v as { amount: number }).amount)));
  const count = released.filter(Boolean).length;
  if (count > 0) logger.warn('released expired spend reservations', { keyId, day, count });
  return count;
}

/**
 * Reserves the request's worst case (micro-CAD) against the key's spend day. Throws GatewayError 429
 * (insufficient_quota / daily_spend_cap_exceeded) when the key's cap cannot take it.
 */
export async function reserve(p: Principal, requestId: string, amount: number, model: string, tier: Tier, now = new Date()): Promise<Reservation> {
  const { day, resetsAt } = spendDay(p.timezone, now);
  const r: Reservation = { keyId: p.keyId, day, requestId, amount, model, tier, reserved: true };
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

/**
 * Admission for a key without a cap: nothing to enforce, so nothing is written; settle() adds the actual cost
 * to the spend day of admission.
 */
export function unreserved(p: Principal, requestId: string, model: string, tier: Tier, now = new Date()): Reservation {
  return { keyId: p.keyId, day: spendDay(p.timezone, now).day, requestId, amount: 0, model, tier, reserved: false };
}

const sumCounts = (counts: Record<string, number | undefined>) => Object.values(counts).reduce((a: number, n) => a + (n ?? 0), 0);
const ms = (from: string, to: string) => Date.parse(to) - Date.parse(from);

/** The per-request usage record: counts, codes and timings only, never content. */
function usageRecord(r: Reservation, e: CustodyEvent, basis: UsageBasis): RequestUsage {
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
    credential: e.credential ? (e.credential.fallback ? 'operator_fallback' : e.credential.owner) : 'operator',
    provider_cost_estimate_micro_cad: e.provider_cost_estimate_micro_cad ?? null,
    usage_basis: basis,
    ttft_ms: e.first_byte_at === null ? null : ms(e.started_at, e.first_byte_at),
    duration_ms: ms(e.started_at, e.ended_at),
    pii_substitutions: sumCounts(e.pii_substitutions),
    started_at: e.started_at,
    ended_at: new Date(e.ended_at).toISOString(),
  };
}

/** One settle() call waiting for (or riding in) a flush. */
interface Settlement {
  r: Reservation;
  e: CustodyEvent;
  /** The usage record item, built at settle() so a malformed event fails its own call only. */
  item: Record<string, unknown>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const MAX_FLUSH = 100;
const MAX_REMOVALS = 50; // reservations per day update: keeps the UpdateExpression far below DynamoDB's 4 KB
const BATCH_WRITE_MAX = 25; // DynamoDB's BatchWriteItem limit
const BATCH_WRITE_ATTEMPTS = 6;

/** ADD clauses shared by the key's day totals and the per-model totals, summed over a group of requests. */
const COUNTERS = 'requests :n, errors :err, input_tokens :in, output_tokens :out, cache_read_tokens :cr, cache_write_tokens :cw';
function counterValues(group: Settlement[]) {
  const sum = (f: (e: CustodyEvent) => number) => group.reduce((a, s) => a + f(s.e), 0);
  return {
    ':n': group.length,
    ':err': sum((e) => (e.status === 'error' ? 1 : 0)),
    ':in': sum((e) => e.usage.input_tokens),
    ':out': sum((e) => e.usage.output_tokens),
    ':cr': sum((e) => e.usage.cache_read_tokens),
    ':cw': sum((e) => e.usage.cache_write_tokens),
    ':cost': sum((e) => e.cost_micro_cad),
  };
}

/**
 * One update of a (key, day) item for a group of its requests: removes their reservations (conditioned on all
 * of them existing, so it applies to all or none) and adds the actual costs, `committed` net of the removed
 * reservations. `afterRelease`: the reservation is already gone and its amount already subtracted, so the cost
 * is simply added.
 */
function dayUpdate(group: Settlement[], now: Date, afterRelease = false): UpdateCommand {
  const held = afterRelease ? [] : group.filter((s) => s.r.reserved);
  const refs = held.map((_, i) => `#r${i}`);
  const values = counterValues(group);
  return new UpdateCommand({
    TableName: tableName('usage'),
    Key: dayKey(group[0].r.keyId, group[0].r.day),
    // if_not_exists: an unreserved request may be the first write of the day.
    UpdateExpression: `SET expires_at = if_not_exists(expires_at, :ttl) ${refs.length ? `REMOVE ${refs.join(', ')} ` : ''}ADD committed :delta, spent :cost, ${COUNTERS}`,
    ...(refs.length ? {
      ConditionExpression: refs.map((ref) => `attribute_exists(${ref})`).join(' AND '),
      ExpressionAttributeNames: Object.fromEntries(held.map((s, i) => [refs[i], RESERVATION_PREFIX + s.r.requestId])),
    } : {}),
    ExpressionAttributeValues: {
      ...values,
      ':delta': values[':cost'] - held.reduce((a, s) => a + s.r.amount, 0),
      ':ttl': retentionEnd(now, DAY_RETENTION_DAYS),
    },
  });
}

/** The per-model day totals of a group of requests of one (key, day, model). */
function modelUpdate(group: Settlement[], now: Date): UpdateCommand {
  const { keyId, day, model } = group[0].r;
  return new UpdateCommand({
    TableName: tableName('usage'),
    Key: { pk: dayModelPk(keyId), sk: dayModelSk(day, model) },
    UpdateExpression: `SET #day = :day, #model = :model, expires_at = if_not_exists(expires_at, :ttl) ADD cost_micro_cad :cost, ${COUNTERS}`,
    ExpressionAttributeNames: { '#day': 'day', '#model': 'model' },
    ExpressionAttributeValues: { ':day': day, ':model': model, ':ttl': retentionEnd(now, DAY_RETENTION_DAYS), ...counterValues(group) },
  });
}

/** Usage records, 25 per BatchWriteItem; unprocessed items (throttling) are retried with jittered backoff. */
async function putRecords(items: Record<string, unknown>[]): Promise<void> {
  const TableName = tableName('usage');
  let pending = items.map((Item) => ({ PutRequest: { Item } }));
  for (let attempt = 1; ; attempt++) {
    const { UnprocessedItems } = await ddb().send(new BatchWriteCommand({ RequestItems: { [TableName]: pending } }));
    pending = (UnprocessedItems?.[TableName] ?? []) as typeof pending;
    if (pending.length === 0) return;
    if (attempt === BATCH_WRITE_ATTEMPTS) throw new Error(`${pending.length} usage records still unprocessed after ${attempt} attempts`);
    await new Promise((done) => setTimeout(done, Math.random() * 25 * 2 ** attempt));
  }
}

/**
 * One request on its own: the path of a group whose combined condition failed. If its reservation is gone
 * (released as expired, or this request was settled before), the record decides: only its first writer adds
 * the cost to the day, so nothing is counted twice.
 */
async function settleAlone(s: Settlement, now: Date): Promise<void> {
  const TableName = tableName('usage');
  const { r } = s;
  if (await applied(ddb().send(dayUpdate([s], now)))) {
    await Promise.all([ddb().send(new PutCommand({ TableName, Item: s.item })), ddb().send(modelUpdate([s], now))]);
    return;
  }
  if (!(await applied(ddb().send(new PutCommand({ TableName, Item: s.item, ConditionExpression: 'attribute_not_exists(pk)' }))))) {
    logger.warn('settle repeated for an already settled request', { requestId: r.requestId, keyId: r.keyId });
    return;
  }
  logger.warn('settled a request whose reservation had expired', { requestId: r.requestId, keyId: r.keyId, day: r.day });
  await Promise.all([ddb().send(dayUpdate([s], now, true)), ddb().send(modelUpdate([s], now))]);
}

/**
 * Writes one batch of settlements and settles each one's promise (this function itself never rejects).
 *
 * (a) runs first, and (b) and (c) only for the groups it committed: a committed group's reservations were all
 * removed by that one update, so each of its requests is counted exactly once and its record can be put
 * unconditionally (a repeat would write the same item). A group whose condition failed wrote nothing and goes
 * through settleAlone(), whose conditional record put is what tells an expired reservation from a repeated
 * settle; writing the batch's records concurrently with (a) would defeat that check.
 */
async function flush(batch: Settlement[], now = new Date()): Promise<void> {
  const together: Settlement[] = [];
  const alone: Promise<void>[] = [];
  // (a) one update per (key, day), at most MAX_REMOVALS requests each
  const dayGroups = groupBy(batch, (s) => `${s.r.keyId}\n${s.r.day}`).flatMap((g) => batches(g, MAX_REMOVALS));
  await Promise.all(dayGroups.map(async (g) => {
    try {
      if (await applied(ddb().send(dayUpdate(g, now)))) together.push(...g);
      else alone.push(...g.map((s) => settleAlone(s, now).then(s.resolve, s.reject)));
    } catch (err) {
      for (const s of g) s.reject(err);
    }
  }));
  // (b) records and (c) per-model totals; each request resolves once every write carrying it succeeded.
  const writes = new Map<Settlement, Promise<unknown>[]>(together.map((s) => [s, []]));
  const carry = (group: Settlement[], write: Promise<unknown>) => group.forEach((s) => writes.get(s)!.push(write));
  for (const g of batches(together, BATCH_WRITE_MAX)) carry(g, putRecords(g.map((s) => s.item)));
  for (const g of groupBy(together, (s) => `${s.r.keyId}\n${s.r.day}\n${s.r.model}`)) carry(g, ddb().send(modelUpdate(g, now)));
  await Promise.all([...alone, ...[...writes].map(([s, w]) => Promise.all(w).then(() => s.resolve(), s.reject))]);
}

let queue: Settlement[] = [];
let flushing = false;

/** Up to MAX_FLUSH queued settlements; a second settle of a request already taken waits for the next flush. */
function take(): Settlement[] {
  const batch: Settlement[] = [];
  const ids = new Set<string>();
  const rest = queue.filter((s) => {
    const id = `${s.r.keyId}\n${s.r.requestId}`;
    if (batch.length === MAX_FLUSH || ids.has(id)) return true;
    ids.add(id);
    batch.push(s);
    return false;
  });
  queue = rest;
  return batch;
}

/**
 * One flush, then the next: at once when a full batch is still waiting, else after the window again, so that
 * settles arriving during a flush form a group as the first ones did (rather than a train of small flushes
 * whenever the store is slow to answer).
 */
async function drain(): Promise<void> {
  const batch = take();
  // flush() settles every promise itself; this only guards against a bug leaving some pending forever.
  await flush(batch).catch((err) => batch.forEach((s) => s.reject(err)));
  if (queue.length >= MAX_FLUSH) void drain();
  else if (queue.length > 0) afterWindow(() => void drain());
  else flushing = false;
}

/**
 * After the response (completed, failed after admission, or cancelled): turns the reservation into the actual
 * cost, writes the request's usage record and adds to the per-model day totals; resolves once all of it is
 * written. If the reservation was already released as expired, the cost is added to the day instead (released
 * amount out, actual cost in). A repeated settle of the same reservation and event after the first completed
 * changes nothing (an unreserved request has no reservation to tell, so it must be settled once).
 *
 * Group commit: settles arriving while a flush is in flight are queued and written together by the next one
 * (one update per spend day, batched records, one update per model), so under load the store sees a few calls
 * per flush instead of three per request. Each flush starts after the group-commit window (group-commit.ts: at
 * once on Lambda), unless a full batch is already waiting.
 */
export function settle(r: Reservation, e: CustodyEvent, basis: UsageBasis = 'reported'): Promise<void> {
  return new Promise((resolve, reject) => {
    const record = usageRecord(r, e, basis);
    const item = {
      pk: requestPk(r.keyId), sk: requestSk(record.ended_at, r.requestId), ...record,
      expires_at: retentionEnd(new Date(), REQUEST_RETENTION_DAYS),
    };
    queue.push({ r, e, item, resolve, reject });
    if (flushing) return;
    flushing = true;
    afterWindow(() => void drain());
  });
}

/**
 * For a request refused before anything was sent upstream (by its key's request limits): its reservation is
 * given back whole, and no usage is recorded, as for a request the cap refused.
 */
export async function release(r: Reservation): Promise<void> {
  if (r.reserved) await releaseReservation(r.keyId, r.day, RESERVATION_PREFIX + r.requestId, r.amount);
}

/**
 * For a request whose settle kept failing: its reservation stays committed for the rest of the spend day
 * instead of expiring, so a cost that could not be recorded is never released as if nothing was spent.
 */
export async function keep(r: Reservation): Promise<void> {
  if (!r.reserved) return;
  await applied(ddb().send(new UpdateCommand({
    TableName: tableName('usage'),
    Key: dayKey(r.keyId, r.day),
    UpdateExpression: 'SET #r.kept = :kept',
    ConditionExpression: 'attribute_exists(#r)',
    ExpressionAttributeNames: { '#r': RESERVATION_PREFIX + r.requestId },
    ExpressionAttributeValues: { ':kept': true },
  })));
}
