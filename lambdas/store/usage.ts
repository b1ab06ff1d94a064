import { QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { GatewayError } from '../core/errors';
import type { UsageBasis } from '../core/pricing';
import { shiftDay } from '../core/spend-day';
import { ddb, queryAll } from './ddb';
import { tableName } from './tables';

/**
 * The usage table (pk/sk strings; `expires_at`, epoch seconds, is its TTL attribute). Written by
 * store/spend.ts, read here.
 *
 *   pk = spend#<keyId>      sk = <day>                     the key's spend day (day in the key's time zone):
 *        committed (spent + outstanding reservations), spent (micro-CAD), requests, errors, input_tokens,
 *        output_tokens, cache_read_tokens, cache_write_tokens, and one top-level attribute per outstanding
 *        reservation `r#<requestId>` = { amount, expires_at, kept? } (see spend.ts for why not a nested map).
 *   pk = daymodel#<keyId>   sk = <day>#<model>             the same counters per model (cost_micro_cad),
 *        plus day and model; one query reads every model of a range of days.
 *   pk = req#<keyId>        sk = <ended_at ISO>#<requestId>  one record per admitted request (REQUEST_FIELDS).
 *   pk = rate#<keyId>       sk = limits                    per-key request limits (store/rate-limits.ts; never read here).
 *   pk = byok#<keyId>       sk = <provider>                when the key's own credential was last used (store/byok-credentials.ts).
 *
 * Day items are kept DAY_RETENTION_DAYS, request records REQUEST_RETENTION_DAYS. DynamoDB's TTL deletes
 * expired items up to a few days late (and the embedded local store never does), so every read here drops
 * items whose `expires_at` has passed itself.
 */
export const REQUEST_RETENTION_DAYS = 90;
export const DAY_RETENTION_DAYS = 400;

export const spendPk = (keyId: string) => `spend#${keyId}`;
export const dayModelPk = (keyId: string) => `daymodel#${keyId}`;
export const dayModelSk = (day: string, model: string) => `${day}#${model}`;
export const requestPk = (keyId: string) => `req#${keyId}`;
export const requestSk = (endedAt: string, requestId: string) => `${endedAt}#${requestId}`;
export const RESERVATION_PREFIX = 'r#';

export const retentionEnd = (from: Date, days: number) => Math.floor(from.getTime() / 1000) + days * 86_400;

export interface Tokens {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
}

export interface ModelDay extends Tokens {
  model: string;
  requests: number;
  errors: number;
  cost_micro_cad: number;
}

export interface DayUsage extends Tokens {
  day: string;
  requests: number;
  errors: number;
  cost_micro_cad: number;
  /** Outstanding reservations of requests still running (or crashed, until they expire). */
  reserved_micro_cad: number;
  models: ModelDay[];
}

export interface RequestUsage extends Tokens {
  request_id: string;
  key_id: string;
  /** The spend day the request was admitted on (key's time zone). */
  day: string;
  model: string;
  tier: string;
  route: { provider: string; region: string; upstream_id: string } | null;
  jurisdiction: string | null;
  status: 'ok' | 'error' | 'cancelled';
  http_status: number;
  finish_reason: string | null;
  error_code: string | null;
  /** What the gateway bills: for a request on the key's own provider credential (BYOK), the routing-only fee. */
  cost_micro_cad: number;
  /**
   * Whose credential served it: the operator's, the customer's own (BYOK), or the operator's in place of a refused
   * customer credential (a key that allows falling back); null in older records.
   */
  credential: 'operator' | 'customer' | 'operator_fallback' | null;
  /** With the customer's credential: what their provider charges them, estimated at the list price (not billed here). */
  provider_cost_estimate_micro_cad: number | null;
  /** `reported`: the provider's usage; `estimated`: it reported none, so tokens were estimated (billing.ts); null in older records. */
  usage_basis: UsageBasis | null;
  ttft_ms: number | null;
  duration_ms: number;
  /** Total placeholders substituted (counts per type live in the custody ledger). */
  pii_substitutions: number;
  started_at: string;
  ended_at: string;
}

export const REQUEST_FIELDS: readonly (keyof RequestUsage)[] = [
  'request_id', 'key_id', 'day', 'model', 'tier', 'route', 'jurisdiction', 'status', 'http_status', 'finish_reason',
  'error_code', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cost_micro_cad', 'credential',
  'provider_cost_estimate_micro_cad', 'usage_basis',
  'ttft_ms', 'duration_ms', 'pii_substitutions', 'started_at', 'ended_at',
];

export type Granularity = 'day' | 'request';

export interface UsageQuery {
  /** Inclusive spend days, YYYY-MM-DD. */
  from: string;
  to: string;
  granularity: Granularity;
  limit: number;
  cursor?: string;
  now?: Date;
}

export interface UsagePage<T> {
  data: T[];
  next_cursor: string | null;
}

type Item = Record<string, unknown>;
const num = (v: unknown) => (typeof v === 'number' ? v : 0);
const tokensOf = (i: Item): Tokens => ({
  input_tokens: num(i.input_tokens),
  output_tokens: num(i.output_tokens),
  cache_read_tokens: num(i.cache_read_tokens),
  cache_write_tokens: num(i.cache_write_tokens),
});

/** Cursors carry the sort key only: the partition always comes from the caller's own key id. */
function encodeCursor(g: Granularity, last: Item | undefined): string | null {
  return last ? Buffer.from(JSON.stringify({ g, sk: last.sk })).toString('base64url') : null;
}

/**
 * The sort key a cursor resumes after. It must lie within the query's own key range: DynamoDB refuses a start
 * key outside it (a 500 if passed on), and a cursor is client text.
 */
function decodeCursor(g: Granularity, cursor: string | undefined, range: { lo: string; hi: string }): string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { g?: unknown; sk?: unknown };
    if (c.g === g && typeof c.sk === 'string' && c.sk >= range.lo && c.sk <= range.hi) return c.sk;
  } catch {
    // falls through to the error below
  }
  throw new GatewayError(400, 'Invalid cursor: pass next_cursor from a previous response with the same granularity.',
    'invalid_request_error', 'invalid_cursor', 'cursor');
}

const NOT_EXPIRED = '(attribute_not_exists(expires_at) OR expires_at > :now)';

/**
 * Up to `limit` unexpired items of one partition in sort-key order. Filters apply after DynamoDB's Limit,
 * so pages are read until `limit` items are collected; the cursor resumes after the last item evaluated.
 */
async function collect(input: QueryCommandInput, pk: string, g: Granularity, limit: number, cursor: string | undefined) {
  const items: Item[] = [];
  const values = input.ExpressionAttributeValues ?? {};
  const sk = decodeCursor(g, cursor, { lo: String(values[g === 'day' ? ':from' : ':lo']), hi: String(values[g === 'day' ? ':to' : ':hi']) });
  let start: Item | undefined = sk === undefined ? undefined : { pk, sk };
  do {
    const page = await ddb().send(new QueryCommand({ ...input, Limit: limit - items.length, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start && items.length < limit);
  return { items, next_cursor: encodeCursor(g, start) };
}

/**
 * One key's usage between two spend days: per day (key totals with a per-model breakdown) or per request,
 * oldest first. `keyId` must come from the authenticated principal, never from the client.
 */
export async function queryUsage(keyId: string, q: UsageQuery & { granularity: 'day' }): Promise<UsagePage<DayUsage>>;
export async function queryUsage(keyId: string, q: UsageQuery & { granularity: 'request' }): Promise<UsagePage<RequestUsage>>;
export async function queryUsage(keyId: string, q: UsageQuery): Promise<UsagePage<DayUsage> | UsagePage<RequestUsage>>;
export async function queryUsage(keyId: string, q: UsageQuery): Promise<UsagePage<DayUsage> | UsagePage<RequestUsage>> {
  const now = Math.floor((q.now ?? new Date()).getTime() / 1000);
  return q.granularity === 'day' ? queryDays(keyId, q, now) : queryRequests(keyId, q, now);
}

async function queryDays(keyId: string, q: UsageQuery, now: number): Promise<UsagePage<DayUsage>> {
  const TableName = tableName('usage');
  const pk = spendPk(keyId);
  const { items, next_cursor } = await collect({
    TableName,
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
    FilterExpression: NOT_EXPIRED,
    ExpressionAttributeValues: { ':pk': pk, ':from': q.from, ':to': q.to, ':now': now },
  }, pk, 'day', q.limit, q.cursor);
  if (items.length === 0) return { data: [], next_cursor };

  const first = String(items[0].sk);
  const last = String(items[items.length - 1].sk);
  // `<day>#` up to `<day>$` ('$' sorts right after '#') covers every model of the page's days.
  const perModel = await queryAll({
    TableName,
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
    FilterExpression: NOT_EXPIRED,
    ExpressionAttributeValues: { ':pk': dayModelPk(keyId), ':lo': `${first}#`, ':hi': `${last}$`, ':now': now },
  });
  const byDay = new Map<string, ModelDay[]>();
  for (const m of perModel) {
    const list = byDay.get(String(m.day)) ?? [];
    list.push({
      model: String(m.model), requests: num(m.requests), errors: num(m.errors), ...tokensOf(m), cost_micro_cad: num(m.cost_micro_cad),
    });
    byDay.set(String(m.day), list);
  }
  return {
    data: items.map((d) => ({
      day: String(d.sk),
      requests: num(d.requests),
      errors: num(d.errors),
      ...tokensOf(d),
      cost_micro_cad: num(d.spent),
      reserved_micro_cad: num(d.committed) - num(d.spent),
      models: byDay.get(String(d.sk)) ?? [],
    })),
    next_cursor,
  };
}

const toRequestUsage = (i: Item) => Object.fromEntries(REQUEST_FIELDS.map((f) => [f, i[f] ?? null])) as unknown as RequestUsage;

async function queryRequests(keyId: string, q: UsageQuery, now: number): Promise<UsagePage<RequestUsage>> {
  const pk = requestPk(keyId);
  // Records sort by UTC end time; a spend day spans at most UTC-12..UTC+14 plus a request's duration, so
  // [from - 1 day, to + 2 days) in UTC holds every record of the range, and the day attribute decides.
  const { items, next_cursor } = await collect({
    TableName: tableName('usage'),
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
    FilterExpression: `#day BETWEEN :from AND :to AND ${NOT_EXPIRED}`,
    ExpressionAttributeNames: { '#day': 'day' },
    ExpressionAttributeValues: {
      ':pk': pk, ':lo': shiftDay(q.from, -1), ':hi': shiftDay(q.to, 2), ':from': q.from, ':to': q.to, ':now': now,
    },
  }, pk, 'request', q.limit, q.cursor);
  return {
    data: items.map(toRequestUsage),
    next_cursor,
  };
}

/**
 * One key's latest request records, newest first: those that ended after `after` (an ISO time) when given. The
 * portal's live view polls with the newest time it has; `keyId` must be one the caller may read.
 */
export async function recentRequests(keyId: string, opts: { after?: string; limit: number; now?: Date }): Promise<RequestUsage[]> {
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const out = await ddb().send(new QueryCommand({
    TableName: tableName('usage'),
    KeyConditionExpression: opts.after ? 'pk = :pk AND sk >= :after' : 'pk = :pk',
    FilterExpression: NOT_EXPIRED,
    ExpressionAttributeValues: { ':pk': requestPk(keyId), ':now': now, ...(opts.after ? { ':after': `${opts.after}#` } : {}) },
    ScanIndexForward: false,
    Limit: opts.limit,
    ConsistentRead: true,
  }));
  return (out.Items ?? []).map(toRequestUsage);
}
