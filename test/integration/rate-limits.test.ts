import { reloadConfig } from '../../lambdas/config';
import type { GatewayError } from '../../lambdas/core/errors';
import type { Principal } from '../../lambdas/core/principal';
import { admitRequest, releaseRequest } from '../../lambdas/store/rate-limits';
import { RESERVATION_TTL_SECONDS } from '../../lambdas/store/spend';
import { useEmbeddedDynamo } from '../support/dynamo';
import { assertOpenAI } from '../support/openapi';
import { principal, rejection } from './spend.fixtures';

/* Per-key request limits against the embedded DynamoDB through the real SDK: conditional single-item writes. */

useEmbeddedDynamo();

beforeAll(() => {
  process.env.NI_METRICS = 'off';
  reloadConfig();
});

let seq = 0;
const key = (limits: Partial<Principal> = {}): Principal => ({ ...principal(`key_rate${++seq}`, null), ...limits });
const T0 = new Date('2026-12-04T15:00:10Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);


describe('per-key request limits', () => {
  test('requests per minute: exactly the limit is admitted among concurrent requests; the next minute starts afresh', async () => {
    const p = key({ requestsPerMinute: 5, maxConcurrent: 100 });
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => admitRequest(p, `r${i}`, at(0))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    const err = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as GatewayError;
    expect(err).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'rate_limit_error', headers: { 'retry-after': '50' } });
    assertOpenAI('ErrorResponse', err.toBody());
    await expect(admitRequest(p, 'next-minute', at(50))).resolves.toMatchObject({ requestId: 'next-minute' });
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
    const p = key({ requestsPerMinute: 2 });
    expect(await admitRequest(p, 'm1', at(0))).toBeNull();
    expect(await admitRequest(p, 'm2', at(0))).toBeNull();
    expect(await rejection(admitRequest(p, 'm3', at(1)))).toMatchObject({ code: 'rate_limit_exceeded' });
  });
});
