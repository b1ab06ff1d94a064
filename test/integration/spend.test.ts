import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { spendDay } from '../../lambdas/core/spend-day';
import { ddb } from '../../lambdas/store/ddb';
import type { Reservation } from '../../lambdas/app/ports';
import { keep, release, reserve, RESERVATION_TTL_SECONDS, settle, unreserved } from '../../lambdas/store/spend';
import { queryUsage, RESERVATION_PREFIX } from '../../lambdas/store/usage';
import { useEmbeddedDynamo } from '../support/dynamo';
import { assertOpenAI } from '../support/openapi';
import { manualWindows, type ManualWindows } from '../support/windows';
import { custodyEvent, principal, rejection } from './spend.fixtures';
import { reloadConfig } from '../../lambdas/config';

const db = useEmbeddedDynamo();

beforeAll(() => {
  process.env.NI_METRICS = 'off';
  reloadConfig();
});

const MODEL = 'anthropic/claude-haiku-4.5';
let seq = 0;
const nextKey = () => `key_spend${++seq}`;
const requestId = (n: number | string) => `req_${seq}_${n}`;

async function dayItem(keyId: string, day: string) {
  const { Item } = await ddb().send(new GetCommand({ TableName: db().tables.usage, Key: { pk: `spend#${keyId}`, sk: day }, ConsistentRead: true }));
  return Item ?? {};
}
const reservations = (item: Record<string, unknown>) => Object.keys(item).filter((k) => k.startsWith(RESERVATION_PREFIX));


describe('daily spend cap', () => {
  it('admits exactly what fits among 64 concurrent requests, never committing past the cap', async () => {
    const keyId = nextKey();
    const p = principal(keyId, 1_000_000); // 1 CAD: room for three reservations of 0.30 CAD
    const now = new Date();
    const results = await Promise.allSettled(Array.from({ length: 64 }, (_, i) => reserve(p, requestId(i), 300_000, MODEL, 'global', now)));
    const admitted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(admitted).toHaveLength(3);
    expect(refused).toHaveLength(61);
    for (const e of refused) expect(e).toMatchObject({ status: 429, code: 'daily_spend_cap_exceeded' });

    const { day } = spendDay('America/Toronto', now);
    let item = await dayItem(keyId, day);
    expect(item.committed).toBe(900_000);
    expect(reservations(item).sort()).toEqual(admitted.map((r) => `${RESERVATION_PREFIX}${r.requestId}`).sort());

    // Settle at the actual costs: the unused part of each reservation goes back under the cap.
    const costs = [100_000, 120_000, 50_000];
    await Promise.all(admitted.map((r, i) => settle(r, custodyEvent(r, costs[i]))));
    item = await dayItem(keyId, day);
    expect(item).toMatchObject({ committed: 270_000, spent: 270_000, requests: 3, errors: 0, output_tokens: 270_000 });
    expect(reservations(item)).toEqual([]);

    // 730_000 left: two more fit, a third does not.
    const more = await Promise.allSettled([0, 1, 2].map((i) => reserve(p, requestId(`more${i}`), 300_000, MODEL, 'global', now)));
    expect(more.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect((await dayItem(keyId, day)).committed).toBe(870_000);
  });

  it('refuses with an OpenAI-shaped 429 that tells when the cap resets and not to retry', async () => {
    const keyId = nextKey();
    const now = new Date('2025-06-10T15:00:00Z');
    await reserve(principal(keyId, 500_000), requestId(1), 400_000, MODEL, 'global', now);
    const err = await rejection(reserve(principal(keyId, 500_000), requestId(2), 200_000, MODEL, 'global', now));
    const resetsAt = '2025-06-11T04:00:00.000Z'; // midnight in Toronto (EDT)
    expect(err.status).toBe(429);
    expect(err.headers).toEqual({ 'x-should-retry': 'false' });
    assertOpenAI('ErrorResponse', err.toBody());
    expect(err.toBody()).toEqual({
      error: {
        message: expect.stringContaining(`daily spend cap of 0.500000 CAD is reached`),
        type: 'insufficient_quota',
        param: null,
        code: 'daily_spend_cap_exceeded',
        resets_at: resetsAt,
      },
    });
    expect(err.message).toContain(resetsAt);
  });

  it('refuses a request that could never fit without writing anything', async () => {
    const keyId = nextKey();
    const now = new Date();
    const err = await rejection(reserve(principal(keyId, 100_000), requestId(1), 100_001, MODEL, 'global', now));
    expect(err.code).toBe('daily_spend_cap_exceeded');
    expect(err.message).toContain('this request alone may cost up to 0.100001 CAD');
    expect(await dayItem(keyId, spendDay('America/Toronto', now).day)).toEqual({});
    // Exactly the cap fits.
    await expect(reserve(principal(keyId, 100_000), requestId(2), 100_000, MODEL, 'global', now)).resolves.toMatchObject({ amount: 100_000 });
  });

  it('releases a crashed invocation\'s reservation once it expires, after the documented 20 minutes, so the key is not blocked', async () => {
    const keyId = nextKey();
    const p = principal(keyId, 1_000_000);
    const t0 = new Date('2025-06-10T15:00:00Z');
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    const TWENTY_MINUTES = 20 * 60; // README: "expires after 20 minutes (Lambda's 15-minute maximum plus margin)"
    await reserve(p, requestId('crashed'), 1_000_000, MODEL, 'global', t0); // never settled
    await expect(reserve(p, requestId('early'), 10, MODEL, 'global', at(TWENTY_MINUTES - 1))).rejects.toMatchObject({ status: 429 });

    // Two requests race after expiry: the expired amount is released once, and only one of them fits.
    const raced = await Promise.allSettled([
      reserve(p, requestId('a'), 600_000, MODEL, 'global', at(TWENTY_MINUTES)),
      reserve(p, requestId('b'), 600_000, MODEL, 'global', at(TWENTY_MINUTES)),
    ]);
    expect(raced.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const item = await dayItem(keyId, '2025-06-10');
    expect(item.committed).toBe(600_000);
    expect(reservations(item)).toHaveLength(1);
    expect(item[`${RESERVATION_PREFIX}${requestId('crashed')}`]).toBeUndefined();
  });

  it('never releases a kept reservation (a request that ended but could not be settled): its cost stays counted', async () => {
    const keyId = nextKey();
    const p = principal(keyId, 1_000_000);
    const t0 = new Date('2025-06-11T15:00:00Z');
    const r = await reserve(p, requestId('unsettled'), 1_000_000, MODEL, 'global', t0);
    await keep(r);
    await expect(reserve(p, requestId('later'), 10, MODEL, 'global', new Date(t0.getTime() + (RESERVATION_TTL_SECONDS + 60) * 1000))).rejects.toMatchObject({ status: 429 });
    const item = await dayItem(keyId, '2025-06-11');
    expect(item.committed).toBe(1_000_000);
    expect(item[`${RESERVATION_PREFIX}${requestId('unsettled')}`]).toMatchObject({ amount: 1_000_000, kept: true });
    // A settle that finally gets through still replaces it with the actual cost.
    await settle(r, custodyEvent(r, 1_234));
    expect(await dayItem(keyId, '2025-06-11')).toMatchObject({ committed: 1_234, spent: 1_234 });
  });

  it('never counts twice when a late settle meets a reservation already released as expired', async () => {
    const keyId = nextKey();
    const p = principal(keyId, 1_000_000);
    const t0 = new Date('2025-06-10T15:00:00Z');
    const late = await reserve(p, requestId('late'), 900_000, MODEL, 'global', t0);
    const fresh = await reserve(p, requestId('fresh'), 200_000, MODEL, 'global', new Date(t0.getTime() + (RESERVATION_TTL_SECONDS + 1) * 1000));
    expect((await dayItem(keyId, '2025-06-10')).committed).toBe(200_000); // the late one was released

    await settle(late, custodyEvent(late, 40_000));
    expect(await dayItem(keyId, '2025-06-10')).toMatchObject({ committed: 240_000, spent: 40_000, requests: 1 });
    await settle(fresh, custodyEvent(fresh, 30_000));
    expect(await dayItem(keyId, '2025-06-10')).toMatchObject({ committed: 70_000, spent: 70_000, requests: 2 });
  });

  it('ignores a repeated settle of the same request', async () => {
    const keyId = nextKey();
    const r = await reserve(principal(keyId, 1_000_000), requestId(1), 500_000, MODEL, 'global', new Date());
    const e = custodyEvent(r, 12_345);
    await settle(r, e);
    await settle(r, e);
    expect(await dayItem(keyId, r.day)).toMatchObject({ committed: 12_345, spent: 12_345, requests: 1 });
  });

  it('counts spend on the key\'s local day: 23:59 and 00:01 in Toronto are two days', async () => {
    const keyId = nextKey();
    const p = principal(keyId, 500_000);
    const before = await reserve(p, requestId('before'), 500_000, MODEL, 'global', new Date('2025-01-15T04:59:00Z'));
    const after = await reserve(p, requestId('after'), 500_000, MODEL, 'global', new Date('2025-01-15T05:01:00Z'));
    expect([before.day, after.day]).toEqual(['2025-01-14', '2025-01-15']);
    await expect(reserve(p, requestId('again'), 1, MODEL, 'global', new Date('2025-01-15T05:02:00Z'))).rejects.toMatchObject({
      status: 429, extra: { resets_at: '2025-01-16T05:00:00.000Z' },
    });
    expect((await dayItem(keyId, '2025-01-14')).committed).toBe(500_000);
    expect((await dayItem(keyId, '2025-01-15')).committed).toBe(500_000);
  });

  it('admits everything for a key without a cap, and still tracks its spend', async () => {
    const keyId = nextKey();
    const p = principal(keyId, null);
    const now = new Date();
    const admitted = await Promise.all(Array.from({ length: 20 }, (_, i) => reserve(p, requestId(i), 5_000_000, MODEL, 'global', now)));
    expect((await dayItem(keyId, admitted[0].day)).committed).toBe(100_000_000);
    await Promise.all(admitted.map((r, i) => settle(r, custodyEvent(r, 1_000, i % 2 ? { status: 'error', http_status: 502, error_code: 'upstream_error' } : {}))));
    expect(await dayItem(keyId, admitted[0].day)).toMatchObject({ committed: 20_000, spent: 20_000, requests: 20, errors: 10 });
  });

  it('gives back the whole reservation of a request refused before the upstream call, once, recording nothing', async () => {
    const keyId = nextKey();
    const p = principal(keyId, 1_000_000);
    const kept = await reserve(p, requestId('kept'), 300_000, MODEL, 'global', new Date());
    const refused = await reserve(p, requestId('refused'), 600_000, MODEL, 'global', new Date());
    await release(refused);
    await release(refused); // a second release subtracts nothing more
    const item = await dayItem(keyId, refused.day);
    expect(item.committed).toBe(300_000);
    expect(reservations(item)).toEqual([`${RESERVATION_PREFIX}${kept.requestId}`]);
    expect(item.requests).toBeUndefined();
    // Released, the room is there again for the key's next request.
    await expect(reserve(p, requestId('next'), 700_000, MODEL, 'global', new Date())).resolves.toBeDefined();
  });

  it('counts a cancelled stream at what it actually cost', async () => {
    const keyId = nextKey();
    const r = await reserve(principal(keyId, 1_000_000), requestId(1), 800_000, MODEL, 'global', new Date());
    await settle(r, custodyEvent(r, 7, { status: 'cancelled', http_status: 200, finish_reason: null }));
    expect(await dayItem(keyId, r.day)).toMatchObject({ committed: 7, spent: 7, requests: 1, errors: 0 });
  });
});

describe('keys without a cap', () => {
  it('admits without a write and settles on the key\'s local day', async () => {
    const keyId = nextKey();
    const p = principal(keyId, null);
    const spy = jest.spyOn(ddb(), 'send');
    let r: Reservation;
    try {
      r = unreserved(p, requestId(1), MODEL, 'global', new Date('2025-01-15T04:59:00Z')); // 23:59 in Toronto
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    expect(r).toMatchObject({ keyId, day: '2025-01-14', amount: 0, reserved: false });
    await settle(r, custodyEvent(r, 4_321));
    const item = await dayItem(keyId, '2025-01-14');
    expect(item).toMatchObject({ committed: 4_321, spent: 4_321, requests: 1, expires_at: expect.any(Number) });
    expect(reservations(item)).toEqual([]);
  });
});

describe('group commit of settles', () => {
  const OTHER_MODEL = 'meta/llama-3-8b';
  const sum = (xs: number[]) => xs.reduce((a, n) => a + n, 0);

  /** `n` admissions for one key on one day: even ones reserved, odd ones unreserved, alternating two models. */
  async function admit(keyId: string, n: number, now: Date, amount = 50_000): Promise<Reservation[]> {
    const p = principal(keyId, null);
    return Promise.all(Array.from({ length: n }, (_, i) => {
      const model = i % 3 ? MODEL : OTHER_MODEL;
      return i % 2 ? Promise.resolve(unreserved(p, requestId(i), model, 'global', now)) : reserve(p, requestId(i), amount, model, 'global', now);
    }));
  }

  async function expectTotals(keyId: string, day: string, settled: Reservation[], costs: number[]) {
    const [{ data: days }, { data: records }] = await Promise.all([
      queryUsage(keyId, { from: day, to: day, granularity: 'day', limit: 10 }),
      queryUsage(keyId, { from: day, to: day, granularity: 'request', limit: 1_000 }),
    ]);
    expect(records.map((x) => x.request_id).sort()).toEqual(settled.map((r) => r.requestId).sort());
    expect(days).toHaveLength(1);
    expect(days[0]).toMatchObject({ requests: settled.length, cost_micro_cad: sum(costs), output_tokens: sum(costs), reserved_micro_cad: 0 });
    for (const m of days[0].models) {
      const mine = settled.flatMap((r, i) => (r.model === m.model ? [costs[i]] : []));
      expect(m).toMatchObject({ requests: mine.length, cost_micro_cad: sum(mine) });
    }
    expect(sum(days[0].models.map((m) => m.requests))).toBe(settled.length);
    expect(reservations(await dayItem(keyId, day))).toEqual([]);
  }

  it('totals many concurrent settles of reserved and unreserved requests exactly, with every record', async () => {
    const keyId = nextKey();
    const now = new Date();
    const admitted = await admit(keyId, 230, now); // more than one flush, and more than one update per day
    const costs = admitted.map((_, i) => 1_000 + i);
    await Promise.all(admitted.map((r, i) => settle(r, custodyEvent(r, costs[i], i % 7 ? {} : { status: 'error', http_status: 502, error_code: 'upstream_error' }))));
    await expectTotals(keyId, admitted[0].day, admitted, costs);
    expect(await dayItem(keyId, admitted[0].day)).toMatchObject({ committed: sum(costs), spent: sum(costs), errors: Math.ceil(230 / 7) });
  });

  it('writes 64 concurrent settles for one key in far fewer calls than three per request', async () => {
    const keyId = nextKey();
    const now = new Date();
    const p = principal(keyId, 100_000_000);
    const admitted = await Promise.all(Array.from({ length: 64 }, (_, i) => reserve(p, requestId(i), 50_000, MODEL, 'global', now)));
    const spy = jest.spyOn(ddb(), 'send');
    try {
      // The first settle flushes alone at once; the other 63 arrive while it is in flight and share the next flush.
      const first = settle(admitted[0], custodyEvent(admitted[0], 10));
      await new Promise(setImmediate);
      await Promise.all([first, ...admitted.slice(1).map((r) => settle(r, custodyEvent(r, 10)))]);
      // 3 for the lone one; then 2 day updates (50 reservations each at most), 3 batch writes, 1 model update.
      expect(spy.mock.calls.length).toBeLessThanOrEqual(9);
    } finally {
      spy.mockRestore();
    }
    await expectTotals(keyId, admitted[0].day, admitted, admitted.map(() => 10));
  });

  /** Runs `fn` with a group-commit window that stays open until the test ends it, counting the store calls. */
  async function withManualWindows<T>(fn: (windows: ManualWindows, calls: () => { input: unknown }[]) => Promise<T>): Promise<T> {
    const spy = jest.spyOn(ddb(), 'send');
    process.env.NI_GROUP_COMMIT_MS = '100';
    reloadConfig();
    const windows = manualWindows();
    try {
      return await fn(windows, () => spy.mock.calls.map(([cmd]) => cmd as { input: unknown }));
    } finally {
      windows.restore();
      delete process.env.NI_GROUP_COMMIT_MS;
      reloadConfig();
      spy.mockRestore();
    }
  }
  /** A flush is one update of the key's spend day. */
  const dayUpdates = (commands: { input: unknown }[]) => commands.filter((cmd) => String((cmd.input as { Key?: { pk?: string } }).Key?.pk).startsWith('spend#')).length;
  const nextTurn = () => new Promise((done) => setImmediate(done));

  it('with a group-commit window, settles arriving apart within it share one flush (the local runtime\'s setting)', async () => {
    const keyId = nextKey();
    const admitted = await admit(keyId, 6, new Date());
    await withManualWindows(async (windows, calls) => {
      // Back-to-back requests finishing on separate turns of the event loop, all before the window ends.
      const settling: Promise<void>[] = [];
      for (const r of admitted) {
        settling.push(settle(r, custodyEvent(r, 10)));
        await nextTurn();
      }
      expect(calls().length).toBe(0); // still inside the window: nothing written yet
      expect(windows.lengths).toEqual([100]); // one window, NI_GROUP_COMMIT_MS long, for the whole group
      windows.end();
      await Promise.all(settling);
      // One flush: one day update, one batch of records, one update per model (two models).
      expect(calls().length).toBe(4);
    });
    await expectTotals(keyId, admitted[0].day, admitted, admitted.map(() => 10));
  });

  it('with a group-commit window, settles arriving during a flush wait for the window again rather than flushing one by one', async () => {
    const keyId = nextKey();
    const admitted = await admit(keyId, 8, new Date());
    const [first, ...rest] = admitted;
    await withManualWindows(async (windows, calls) => {
      const settlingFirst = settle(first, custodyEvent(first, 10));
      windows.end(); // the first flush starts: its day update is in flight
      expect(dayUpdates(calls())).toBe(1);
      // The others arrive while it runs, one a turn.
      const settling: Promise<void>[] = [];
      for (const r of rest) {
        settling.push(settle(r, custodyEvent(r, 10)));
        await nextTurn();
      }
      await settlingFirst;
      // Once the first flush is done, the others wait for a window of their own instead of going out at once.
      const next = await Promise.race([windows.opened().then(() => 'a window'), Promise.all(settling).then(() => 'written without one')]);
      expect(next).toBe('a window');
      expect(dayUpdates(calls())).toBe(1);
      windows.end();
      await Promise.all(settling);
      expect(dayUpdates(calls())).toBe(2); // all of them in one flush
      expect(windows.lengths).toEqual([100, 100]);
    });
    await expectTotals(keyId, admitted[0].day, admitted, admitted.map(() => 10));
  });

  it('falls back to one by one when a reservation in the group was released as expired, counting nothing twice', async () => {
    const keyId = nextKey();
    const t0 = new Date('2025-06-10T15:00:00Z');
    const later = new Date(t0.getTime() + (RESERVATION_TTL_SECONDS + 1) * 1000);
    const late = await reserve(principal(keyId, 1_000_000), requestId('late'), 900_000, MODEL, 'global', t0);
    // At the cap after the TTL: admitting `fresh` releases `late`.
    const others = [
      await reserve(principal(keyId, 1_000_000), requestId('fresh'), 200_000, MODEL, 'global', later),
      unreserved(principal(keyId, null), requestId('free'), MODEL, 'global', later),
    ];
    expect(reservations(await dayItem(keyId, '2025-06-10'))).toEqual([`${RESERVATION_PREFIX}${requestId('fresh')}`]);

    const group = [others[0], late, others[1]]; // the released one not first: every reservation is checked
    const costs = [30_000, 40_000, 20_000];
    const at = later; // records sort by end time
    await Promise.all(group.map((r, i) => settle(r, custodyEvent(r, costs[i], {}, at)))); // one flush, one group
    expect(await dayItem(keyId, '2025-06-10')).toMatchObject({ committed: 90_000, spent: 90_000, requests: 3 });

    // Settled again (retries), alongside a new request settled twice at once: repeats change nothing.
    const more = await reserve(principal(keyId, 1_000_000), requestId('more'), 100_000, MODEL, 'global', later);
    await Promise.all([
      settle(late, custodyEvent(late, 40_000, {}, at)),
      settle(others[0], custodyEvent(others[0], 30_000, {}, at)),
      settle(more, custodyEvent(more, 5_000, {}, at)),
      settle(more, custodyEvent(more, 5_000, {}, at)),
    ]);
    const records = await queryUsage(keyId, { from: '2025-06-10', to: '2025-06-10', granularity: 'request', limit: 10 });
    expect(records.data.map((x) => x.request_id).sort()).toEqual([...group, more].map((r) => r.requestId).sort());
    const { data: [day] } = await queryUsage(keyId, { from: '2025-06-10', to: '2025-06-10', granularity: 'day', limit: 10, now: later });
    expect(day).toMatchObject({ requests: 4, cost_micro_cad: 95_000, reserved_micro_cad: 0, models: [expect.objectContaining({ requests: 4, cost_micro_cad: 95_000 })] });
  });

  it('rejects exactly the settles of a write that failed, and completes the rest', async () => {
    const [good, bad] = [nextKey(), nextKey()];
    const now = new Date();
    const ok = await admit(good, 4, now);
    const doomed = await admit(bad, 3, now);
    // A day item whose counter is not a number: DynamoDB refuses to ADD to it.
    await ddb().send(new PutCommand({ TableName: db().tables.usage, Item: { ...await dayItem(bad, doomed[0].day), committed: 'corrupt' } }));
    const results = await Promise.allSettled([...ok, ...doomed].map((r) => settle(r, custodyEvent(r, 100))));
    expect(results.slice(0, 4).map((x) => x.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(results.slice(4).map((x) => x.status)).toEqual(['rejected', 'rejected', 'rejected']);
    await expectTotals(good, ok[0].day, ok, ok.map(() => 100));
  });
});
