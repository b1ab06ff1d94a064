import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as usageCli } from '../../bin/commands/usage';
import { toAuthorizerContext } from '../../lambdas/core/principal';
import { shiftDay, spendDay } from '../../lambdas/core/spend-day';
import { handler } from '../../lambdas/handlers/usage';
import { createKey } from '../../lambdas/store/keys';
import type { Reservation } from '../../lambdas/app/ports';
import { reserve, settle, unreserved } from '../../lambdas/store/spend';
import { type DayUsage, queryUsage, type RequestUsage } from '../../lambdas/store/usage';
import { useEmbeddedDynamo } from '../support/dynamo';
import { custodyEvent, principal } from './spend.fixtures';
import { reloadConfig } from '../../lambdas/config';

let dataDir: string;

const db = useEmbeddedDynamo();

beforeAll(() => {
  process.env.NI_METRICS = 'off';
  reloadConfig();
  dataDir = mkdtempSync(join(tmpdir(), 'ni-usage-'));
  writeFileSync(join(dataDir, 'dynamodb-endpoint'), db().endpoint);
  process.env.NI_DATA_DIR = dataDir;
  reloadConfig();
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

const HAIKU = 'anthropic/claude-haiku-4.5';
const LLAMA = 'meta/llama-3-8b';
const KEY = 'key_usageA';
const OTHER = 'key_usageB';

/**
 * Admits and settles one request at `when` (its spend day follows the key's Toronto time zone). The keys here
 * have no cap, so like the gateway this admits without a reservation, except for `reserved` (capped keys).
 */
async function request(keyId: string, id: string, model: string, cost: number, when: string, status: 'ok' | 'error' = 'ok', reserved = false): Promise<Reservation> {
  const r = reserved
    ? await reserve(principal(keyId, cost * 10), id, cost * 10, model, 'global', new Date(when))
    : unreserved(principal(keyId, null), id, model, 'global', new Date(when));
  await settle(r, custodyEvent(r, cost, status === 'error' ? { status, http_status: 502, error_code: 'upstream_error' } : {}, new Date(when)));
  return r;
}

// Recent days (older ones would be past their retention): D1..D3 are consecutive spend days in Toronto.
const D0 = shiftDay(spendDay('America/Toronto', new Date()).day, -20);
const [D1, D2, D3, D5, D10] = [1, 2, 3, 5, 10].map((n) => shiftDay(D0, n));
const range = { from: D0, to: shiftDay(D0, 15) };

beforeAll(async () => {
  // Three spend days in Toronto; 03:00Z on D3 is still D2 there.
  await request(KEY, 'req_a1', HAIKU, 100, `${D1}T15:00:00Z`, 'ok', true);
  await request(KEY, 'req_a2', LLAMA, 20, `${D1}T16:00:00Z`);
  await request(KEY, 'req_a3', HAIKU, 300, `${D1}T17:00:00Z`, 'error');
  await request(KEY, 'req_a4', HAIKU, 40, `${D3}T03:00:00Z`);
  await request(KEY, 'req_a5', LLAMA, 5, `${D3}T15:00:00Z`);
  await request(OTHER, 'req_b1', HAIKU, 999, `${D1}T15:00:00Z`);
});

describe('usage store', () => {
  it('returns each admitted request right after it settles', async () => {
    const page = await queryUsage(KEY, { ...range, granularity: 'request', limit: 100 });
    expect(page.next_cursor).toBeNull();
    expect(page.data.map((r) => r.request_id)).toEqual(['req_a1', 'req_a2', 'req_a3', 'req_a4', 'req_a5']);
    expect(page.data[0]).toEqual({
      request_id: 'req_a1', key_id: KEY, day: D1, model: HAIKU, tier: 'global',
      route: { provider: 'bedrock', region: 'ca-central-1', upstream_id: 'us.anthropic.claude-haiku-4-5-20251001-v1:0' },
      jurisdiction: 'US', status: 'ok', http_status: 200, finish_reason: 'stop', error_code: null,
      input_tokens: 1000, output_tokens: 100, cache_read_tokens: 1, cache_write_tokens: 2, cost_micro_cad: 100, credential: 'operator',
      provider_cost_estimate_micro_cad: null, usage_basis: 'reported',
      ttft_ms: 300, duration_ms: 1500, pii_substitutions: 0,
      started_at: `${D1}T14:59:58.500Z`, ended_at: `${D1}T15:00:00.000Z`,
    } satisfies RequestUsage);
    expect(page.data[3].day).toBe(D2);
    expect(page.data[2]).toMatchObject({ status: 'error', error_code: 'upstream_error' });
  });

  it('totals each day, per key and per model, to the sum of its requests', async () => {
    const { data: days } = await queryUsage(KEY, { ...range, granularity: 'day', limit: 100 });
    const { data: requests } = await queryUsage(KEY, { ...range, granularity: 'request', limit: 100 });
    expect(days.map((d) => d.day)).toEqual([D1, D2, D3]);
    for (const d of days) {
      const mine = requests.filter((r) => r.day === d.day);
      const sum = (f: (r: RequestUsage) => number) => mine.reduce((a, r) => a + f(r), 0);
      expect(d).toMatchObject({
        requests: mine.length,
        errors: mine.filter((r) => r.status === 'error').length,
        cost_micro_cad: sum((r) => r.cost_micro_cad),
        input_tokens: sum((r) => r.input_tokens),
        output_tokens: sum((r) => r.output_tokens),
        reserved_micro_cad: 0,
      });
      for (const m of d.models) {
        const ofModel = mine.filter((r) => r.model === m.model);
        expect(m).toMatchObject({ requests: ofModel.length, cost_micro_cad: ofModel.reduce((a, r) => a + r.cost_micro_cad, 0) });
      }
      expect(d.models.reduce((a, m) => a + m.cost_micro_cad, 0)).toBe(d.cost_micro_cad);
    }
    expect(days[0].models.map((m) => [m.model, m.requests, m.errors, m.cost_micro_cad])).toEqual([[HAIKU, 2, 1, 400], [LLAMA, 1, 0, 20]]);
  });

  it('shows reservations of requests still running', async () => {
    const r = await reserve(principal('key_usageRunning', null), 'req_r1', 5_000, HAIKU, 'global', new Date(`${D10}T15:00:00Z`));
    const { data } = await queryUsage('key_usageRunning', { ...range, granularity: 'day', limit: 10 });
    expect(data).toEqual([expect.objectContaining({ day: r.day, requests: 0, cost_micro_cad: 0, reserved_micro_cad: 5_000, models: [] })]);
  });

  it('pages with a cursor, without gaps or repeats', async () => {
    for (const granularity of ['request', 'day'] as const) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await queryUsage(KEY, { ...range, granularity, limit: 2, cursor });
        expect(page.data.length).toBeLessThanOrEqual(2);
        seen.push(...page.data.map((x) => ('request_id' in x ? x.request_id : (x as DayUsage).day)));
        cursor = page.next_cursor ?? undefined;
        pages++;
      } while (cursor);
      expect(seen).toEqual(granularity === 'request' ? ['req_a1', 'req_a2', 'req_a3', 'req_a4', 'req_a5'] : [D1, D2, D3]);
      expect(pages).toBeGreaterThan(1);
    }
    await expect(queryUsage(KEY, { ...range, granularity: 'request', limit: 2, cursor: 'bogus' })).rejects.toMatchObject({ status: 400, code: 'invalid_cursor' });
  });

  it('a crafted cursor (a sort key outside the query\'s range, empty, or longer than a key may be) is a 400, not a 500', async () => {
    const crafted = (g: string, sk: string) => Buffer.from(JSON.stringify({ g, sk })).toString('base64url');
    for (const [g, sk] of [['request', '1999-01-01'], ['request', ''], ['day', '2999-01-01'], ['day', 'x'.repeat(2000)]] as const) {
      await expect(queryUsage(KEY, { ...range, granularity: g, limit: 2, cursor: crafted(g, sk) })).rejects.toMatchObject({ status: 400, code: 'invalid_cursor' });
    }
  });

  it('narrows to the requested days', async () => {
    const { data } = await queryUsage(KEY, { from: D2, to: D2, granularity: 'request', limit: 100 });
    expect(data.map((r) => r.request_id)).toEqual(['req_a4']);
  });

  it('never shows one key another key\'s usage', async () => {
    const mine = await queryUsage(OTHER, { ...range, granularity: 'request', limit: 100 });
    expect(mine.data.map((r) => r.request_id)).toEqual(['req_b1']);
    expect((await queryUsage('key_usageNobody', { ...range, granularity: 'day', limit: 100 })).data).toEqual([]);
    // A cursor taken from one key's listing cannot reach into another's partition.
    const page = await queryUsage(KEY, { ...range, granularity: 'request', limit: 1 });
    const theirs = await queryUsage(OTHER, { ...range, granularity: 'request', limit: 100, cursor: page.next_cursor! });
    expect(theirs.data.every((r) => r.key_id === OTHER)).toBe(true);
  });

  it('keeps request records the documented 90 days and daily totals 400 days, dropping them after even before DynamoDB does', async () => {
    const days = (n: number) => new Date(Date.now() + n * 86_400_000);
    const requests = async (now: Date) => (await queryUsage(KEY, { ...range, granularity: 'request', limit: 100, now })).data;
    const totals = async (now: Date) => (await queryUsage(KEY, { ...range, granularity: 'day', limit: 100, now })).data;
    expect(await requests(days(89))).toHaveLength(5);
    expect(await requests(days(91))).toEqual([]);
    expect(await totals(days(91))).toHaveLength(3);
    // A day's totals count from their first write: D1's reservation (D1, some 19 days ago), the others' settles (now).
    const firstWrite = Date.parse(`${D1}T15:00:00Z`);
    expect(await totals(new Date(firstWrite + 399 * 86_400_000))).toHaveLength(3);
    expect(await totals(days(401))).toEqual([]);
  });
});

describe('GET /api/usage', () => {
  const call = (query: Record<string, string> | null, keyId: string | null = KEY) =>
    handler({
      httpMethod: 'GET', path: '/api/usage', headers: {}, queryStringParameters: query,
      requestContext: { authorizer: keyId ? toAuthorizerContext(principal(keyId, null)) : null },
    } as unknown as APIGatewayProxyEvent, {} as Context);

  it('returns the caller\'s own usage', async () => {
    const res = await call({ ...range, granularity: 'day' });
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({ 'content-type': 'application/json', 'cache-control': 'no-store' });
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ object: 'list', key_id: KEY, granularity: 'day', ...range, currency: 'CAD', next_cursor: null });
    expect(body.data.map((d: DayUsage) => d.day)).toEqual([D1, D2, D3]);

    const requests = JSON.parse((await call({ ...range, granularity: 'request', limit: '2' })).body);
    expect(requests.data).toHaveLength(2);
    expect(requests.next_cursor).toEqual(expect.any(String));
    const rest = JSON.parse((await call({ ...range, granularity: 'request', cursor: requests.next_cursor })).body);
    expect(rest.data.map((r: RequestUsage) => r.request_id)).toEqual(['req_a3', 'req_a4', 'req_a5']);
  });

  it('defaults to the last 7 days in the key\'s time zone', async () => {
    const body = JSON.parse((await call(null)).body);
    expect(body.granularity).toBe('day');
    const span = (Date.parse(body.to) - Date.parse(body.from)) / 86_400_000;
    expect(span).toBe(6);
  });

  it('rejects bad parameters with OpenAI-shaped 400s', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ granularity: 'hour' }, 'granularity'],
      [{ from: '2025-02-30' }, 'from'],
      [{ limit: '0' }, 'limit'],
      [{ limit: 'many' }, 'limit'],
      [{ from: D2, to: D1 }, 'from'],
      [{ from: '2024-01-01', to: '2025-03-01' }, 'from'],
      [{ cursor: 'nope' }, 'cursor'],
    ];
    for (const [query, param] of cases) {
      const res = await call(query);
      expect(res.statusCode).toBe(400);
      expect(JSON.parse(res.body)).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param, code: param === 'cursor' ? 'invalid_cursor' : null } });
    }
  });

  it('answers 401 without an authorizer principal', async () => {
    const res = await call({}, null);
    expect(res.statusCode).toBe(401);
    expect(JSON.parse(res.body).error.code).toBe('invalid_api_key');
  });
});

describe('ni usage', () => {
  let logged: string[];
  let spy: jest.SpyInstance;
  beforeEach(() => {
    logged = [];
    spy = jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void logged.push(args.join(' ')));
  });
  afterEach(() => spy.mockRestore());

  it('prints one key\'s days per model, and every key without --key', async () => {
    const { record } = await createKey({ name: 'cli', timezone: 'America/Toronto' });
    await request(record.id, 'req_c1', HAIKU, 1_500_000, `${D5}T15:00:00Z`);
    await request(record.id, 'req_c2', LLAMA, 250_000, `${D5}T16:00:00Z`);

    expect(await usageCli(['--key', record.id, '--from', range.from, '--to', range.to])).toBe(0);
    const table = logged.join('\n');
    expect(table).toMatch(/DAY\s+KEY\s+MODEL\s+REQUESTS\s+INPUT\s+OUTPUT\s+CACHE_READ\s+CACHE_WRITE\s+COST_CAD/);
    expect(table).toMatch(new RegExp(`${D5}\\s+${record.id}\\s+anthropic/claude-haiku-4.5\\s+1\\s+.*1\\.500000`));
    expect(table).toContain(`Total: 1.750000 CAD from ${range.from} .. ${range.to}`);

    logged = [];
    expect(await usageCli(['--from', range.from, '--to', range.to, '--granularity', 'request', '--json'])).toBe(0);
    const out = JSON.parse(logged.join('\n'));
    const ids = out.keys.flatMap((k: { data: RequestUsage[] }) => k.data.map((r) => r.request_id));
    expect(ids).toEqual(expect.arrayContaining(['req_c1', 'req_c2']));
    expect(out.keys.map((k: { key_id: string }) => k.key_id)).toContain(record.id);
  });

  it('refuses bad flags and unknown keys', async () => {
    const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await usageCli(['--granularity', 'week'])).toBe(2);
      expect(await usageCli(['--from', '2025-13-01'])).toBe(2);
      expect(await usageCli(['--key', 'key_doesNotExist'])).toBe(1);
    } finally {
      err.mockRestore();
    }
  });
});
