import type { Route } from '../../lambdas/core/catalog';
import type { RouteAttempt } from '../../lambdas/core/custody';
import { parseChatRequest } from '../../lambdas/core/openai';
import { UpstreamError, type Provider, type UpstreamFailure } from '../../lambdas/providers/provider';
import { callUpstream } from '../../lambdas/providers/upstream';

/* Failover over fake providers: what is attempted, in which order, and what stops it. */

const request = parseChatRequest(JSON.stringify({ model: 'm/x', messages: [{ role: 'user', content: 'hi' }] }));
const route = (provider: string, upstream_id: string): Route => ({ provider, region: 'r', upstream_id, jurisdiction: 'CA', canadian_controlled: false, verified: true });
const A = route('a', 'model-a');
const B = route('b', 'model-b');

/** A provider playing `script` in order: a failure kind, `hang` (never answers; records whether it was aborted), or `ok`. */
function scripted(script: (UpstreamFailure | 'hang' | 'ok')[]) {
  const aborted: boolean[] = [];
  const provider: Provider = {
    stream: (_route, _req, _max, signal) => {
      const step = script.shift() ?? 'ok';
      if (step === 'ok') return Promise.resolve({ events: (async function* () {})(), requestSha256: '' });
      if (step === 'hang') return new Promise(() => signal?.addEventListener('abort', () => aborted.push(true)));
      return Promise.reject(new UpstreamError(step));
    },
    custodyHops: () => [],
  };
  return { provider, aborted };
}

test('throttled, then unavailable, then answered: every attempt is recorded, rotating through the routes', async () => {
  const a = scripted(['throttled', 'unavailable']);
  const b = scripted(['ok']);
  const attempts: RouteAttempt[] = [];
  const out = await callUpstream(new Map([['a', a.provider], ['b', b.provider]]), [A, B], request, 100, { attempts });
  expect(out.route).toBe(B);
  expect(attempts.map((x) => `${x.provider}:${x.outcome}`)).toEqual(['a:throttled', 'b:ok']);
});

test('no answer within the first-byte timeout: the attempt is aborted and the next route tried', async () => {
  const a = scripted(['hang']);
  const b = scripted(['ok']);
  const attempts: RouteAttempt[] = [];
  // The first-byte timers fire when the test says.
  const timers: { ms: number; fire: () => void }[] = [];
  const calling = callUpstream(new Map([['a', a.provider], ['b', b.provider]]), [A, B], request, 100, {
    attempts, firstByteTimeoutMs: 30_000, schedule: (ms, fire) => (timers.push({ ms, fire }), () => undefined),
  });
  expect(timers.map((t) => t.ms)).toEqual([30_000]); // the first attempt waits for its provider
  timers[0].fire();
  const out = await calling;
  expect(out.route).toBe(B);
  expect(a.aborted).toEqual([true]);
  expect(attempts.map((x) => x.outcome)).toEqual(['timeout', 'ok']);
});

test('a rejected request is not retried anywhere', async () => {
  const a = scripted(['rejected']);
  const b = scripted(['ok']);
  const attempts: RouteAttempt[] = [];
  await expect(callUpstream(new Map([['a', a.provider], ['b', b.provider]]), [A, B], request, 100, { attempts })).rejects.toMatchObject({ failure: 'rejected' });
  expect(attempts.map((x) => `${x.provider}:${x.outcome}`)).toEqual(['a:rejected']);
});

test('three throttles: 429 with retry-after, and only the given routes were called', async () => {
  const a = scripted(['throttled', 'throttled']);
  const b = scripted(['throttled']);
  const attempts: RouteAttempt[] = [];
  const err = await callUpstream(new Map([['a', a.provider], ['b', b.provider]]), [A, B], request, 100, { attempts }).catch((e: unknown) => e as UpstreamError);
  expect(err).toMatchObject({ status: 429, headers: { 'retry-after': '2' }, extra: { upstream_throttles: 3 } });
  expect(attempts.map((x) => `${x.provider}:${x.outcome}`)).toEqual(['a:throttled', 'b:throttled', 'a:throttled']);
});
