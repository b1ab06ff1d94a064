import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { reloadConfig } from '../../lambdas/config';
import type { GatewayError } from '../../lambdas/core/errors';
import { hashSecret, keyToPrincipal } from '../../lambdas/core/keys';
import type { Principal } from '../../lambdas/core/principal';
import { ddb } from '../../lambdas/store/ddb';
import { createKey, findByHash } from '../../lambdas/store/keys';
import { admitRequest, releaseRequest } from '../../lambdas/store/rate-limits';
import { RESERVATION_TTL_SECONDS } from '../../lambdas/store/spend';
import { tableName } from '../../lambdas/store/tables';
import { useEmbeddedDynamo } from '../support/dynamo';
import { assertOpenAI } from '../support/openapi';
import { principal, rejection } from './spend.fixtures';

/* Per-key request limits against the embedded DynamoDB through the real SDK: one conditional write per admission. */

useEmbeddedDynamo();

beforeAll(() => {
  process.env.NI_METRICS = 'off';
  reloadConfig();
});

let seq = 0;
const key = (limits: Partial<Principal> = {}): Principal => ({ ...principal(`key_rate${++seq}`, null), ...limits });
const T0 = new Date('2026-12-04T15:00:10Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

/** The store calls made while `run` runs, by command (the SDK's own count, below the document client). */
async function callsOf(run: () => Promise<unknown>): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  const name = `count-${++seq}`;
  ddb().middlewareStack.add((next, ctx) => (args) => {
    calls[ctx.commandName ?? '?'] = (calls[ctx.commandName ?? '?'] ?? 0) + 1;
    return next(args);
  }, { step: 'initialize', name });
  try {
    await run();
  } finally {
    ddb().middlewareStack.remove(name);
  }
  return calls;
}

describe('per-key request limits', () => {
  test('an admission in the same minute as the key\'s last is ONE conditional write, nothing read; its release one more', async () => {
    const p = key({ requestsPerMinute: 300, maxConcurrent: 10 });
    const first = await admitRequest(p, 'first', at(0)); // the key's first request: its item begins
    const calls: Record<string, number>[] = [];
    let lease: Awaited<ReturnType<typeof admitRequest>> = null;
    calls.push(await callsOf(async () => (lease = await admitRequest(p, 'second', at(5)))));
    calls.push(await callsOf(() => releaseRequest(lease!)));
    expect(calls).toEqual([{ UpdateItemCommand: 1 }, { UpdateItemCommand: 1 }]);
    // A new minute takes the second form of the update: still no read.
    expect(await callsOf(() => admitRequest(p, 'next-minute', at(60)))).toEqual({ UpdateItemCommand: 2 });
    expect(await callsOf(() => releaseRequest(first!))).toEqual({ UpdateItemCommand: 1 });
  });

  test('a key without limits (null) writes nothing and holds nothing', async () => {
    const p = key({ requestsPerMinute: null, maxConcurrent: null });
    let lease: unknown;
    expect(await callsOf(async () => (lease = await admitRequest(p, 'free', at(0))))).toEqual({});
    expect(lease).toBeNull();
  });

  test('requests per minute: exactly the limit is admitted among concurrent requests; the next minute starts afresh', async () => {
    const p = key({ requestsPerMinute: 5, maxConcurrent: 100 });
    // All at once on a key's first minute: the two forms of the write race, and each refusal still names the limit.
    const results = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => admitRequest(p, `r${i}`, at(0))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as GatewayError] : []));
    expect(refusals).toHaveLength(27);
    for (const err of refusals) {
      expect(err).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'rate_limit_error', headers: { 'retry-after': '50' } });
    }
    assertOpenAI('ErrorResponse', refusals[0].toBody());

    await expect(admitRequest(p, 'next-minute', at(50))).resolves.toMatchObject({ requestId: 'next-minute' });
    // The new minute is counted from 1: its limit applies afresh, and its refusal says how long is left of it.
    for (let i = 0; i < 4; i++) await admitRequest(p, `later${i}`, at(51 + i));
    expect(await rejection(admitRequest(p, 'over', at(62)))).toMatchObject({ code: 'rate_limit_exceeded', headers: { 'retry-after': '48' } });
  });

  test('a request that finds room on reading but loses it before its retry is refused for the limit it met', async () => {
    const p = key({ requestsPerMinute: 2, maxConcurrent: 100 });
    // Other requests get in just before X's second and third writes: its new-minute form fails (the minute has
    // begun), its read finds room, and its retry fails (the minute is full).
    const others: Record<number, string> = { 2: 'y', 3: 'z' };
    let xWrites = 0;
    const name = `race-${++seq}`;
    ddb().middlewareStack.add((next, ctx) => async (args) => {
      const input = args.input as { ExpressionAttributeNames?: Record<string, string> };
      if (ctx.commandName === 'UpdateItemCommand' && input.ExpressionAttributeNames?.['#slot'] === 's#x') {
        const other = others[++xWrites];
        if (other) await admitRequest(p, other, at(0));
      }
      return next(args);
    }, { step: 'initialize', name });
    try {
      expect(await rejection(admitRequest(p, 'x', at(0)))).toMatchObject({ code: 'rate_limit_exceeded', headers: { 'retry-after': '50' } });
    } finally {
      ddb().middlewareStack.remove(name);
    }
    expect(xWrites).toBe(3);
  });

  test('a Lambda whose clock is behind counts its request in the key\'s current minute, not in a minute gone', async () => {
    const p = key({ requestsPerMinute: 2, maxConcurrent: null });
    await admitRequest(p, 'now1', at(60));
    await admitRequest(p, 'late', at(49)); // the previous minute by its clock
    expect(await rejection(admitRequest(p, 'now2', at(61)))).toMatchObject({ code: 'rate_limit_exceeded' });
  });

  test('requests in progress: at most the limit; a released slot is free again, and a refused request holds none', async () => {
    const p = key({ requestsPerMinute: 1000, maxConcurrent: 2 });
    const a = (await admitRequest(p, 'a', at(0)))!;
    await admitRequest(p, 'b', at(0));
    const err = await rejection(admitRequest(p, 'c', at(1)));
    expect(err).toMatchObject({ status: 429, code: 'too_many_concurrent_requests', headers: { 'retry-after': '1' } });
    await releaseRequest(a);
    await releaseRequest(a); // a repeated release frees nothing more
    await admitRequest(p, 'd', at(2));
    expect(await rejection(admitRequest(p, 'e', at(2)))).toMatchObject({ code: 'too_many_concurrent_requests' });
  });

  test('a request refused per minute gives back the slot it took', async () => {
    const p = key({ requestsPerMinute: 1, maxConcurrent: 1 });
    const first = (await admitRequest(p, 'first', at(0)))!;
    await releaseRequest(first);
    expect(await rejection(admitRequest(p, 'second', at(1)))).toMatchObject({ code: 'rate_limit_exceeded' });
    await expect(admitRequest(p, 'next-minute', at(60))).resolves.toBeDefined();
  });

  test('a slot whose holder died expires after the reservation TTL, so the key is not blocked for good', async () => {
    const p = key({ requestsPerMinute: 1000, maxConcurrent: 1 });
    await admitRequest(p, 'killed', at(0)); // never released
    expect(await rejection(admitRequest(p, 'early', at(RESERVATION_TTL_SECONDS - 60)))).toMatchObject({ code: 'too_many_concurrent_requests' });
    await expect(admitRequest(p, 'after', at(RESERVATION_TTL_SECONDS + 60))).resolves.toBeDefined();
  });

  test('a key with only a per-minute limit is counted but holds no slot to release', async () => {
    const p = key({ requestsPerMinute: 2, maxConcurrent: null });
    expect(await admitRequest(p, 'm1', at(0))).toBeNull();
    expect(await admitRequest(p, 'm2', at(0))).toBeNull();
    expect(await rejection(admitRequest(p, 'm3', at(1)))).toMatchObject({ code: 'rate_limit_exceeded' });
  });
});

describe('default limits (README: Limits documents 300 requests per minute and 10 in progress)', () => {
  const README_PER_MINUTE = 300;
  const README_CONCURRENT = 10;

  /** Admits `n` requests in the minute at(0), at most `README_CONCURRENT` at a time, each released after. */
  async function admitMany(p: Principal, n: number) {
    for (let i = 0; i < n; i += README_CONCURRENT) {
      const leases = await Promise.all(Array.from({ length: Math.min(README_CONCURRENT, n - i) }, (_, j) => admitRequest(p, `m${i + j}`, at(1))));
      await Promise.all(leases.map((l) => releaseRequest(l!)));
    }
  }

  async function expectDefaults(p: Principal) {
    expect(p).toMatchObject({ requestsPerMinute: README_PER_MINUTE, maxConcurrent: README_CONCURRENT });
    const held = await Promise.all(Array.from({ length: README_CONCURRENT }, (_, i) => admitRequest(p, `held${i}`, at(0))));
    expect(await rejection(admitRequest(p, 'one-more', at(0)))).toMatchObject({ code: 'too_many_concurrent_requests' });
    await Promise.all(held.map((l) => releaseRequest(l!)));
    await admitMany(p, README_PER_MINUTE - README_CONCURRENT);
    expect(await rejection(admitRequest(p, 'over', at(2)))).toMatchObject({ code: 'rate_limit_exceeded', headers: { 'retry-after': '48' } });
  }

  test('apply to a key created without options', async () => {
    const { secret } = await createKey({ name: 'defaults' });
    await expectDefaults(keyToPrincipal((await findByHash(hashSecret(secret)))!));
  });

  test('apply to a key record written before the limits existed (fields absent); an explicit null stays no limit', async () => {
    const old = await createKey({ name: 'old' });
    await ddb().send(new UpdateCommand({
      TableName: tableName('keys'), Key: { pk: `hash#${hashSecret(old.secret)}`, sk: 'key' },
      UpdateExpression: 'REMOVE requests_per_minute, max_concurrent_requests',
    }));
    await expectDefaults(keyToPrincipal((await findByHash(hashSecret(old.secret)))!));

    const unlimited = await createKey({ name: 'unlimited', requests_per_minute: null, max_concurrent_requests: null });
    expect(await findByHash(hashSecret(unlimited.secret))).toMatchObject({ requests_per_minute: null, max_concurrent_requests: null });
  });
});
