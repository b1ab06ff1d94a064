import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { reservationAmount } from '../../lambdas/core/billing';
import { catalog } from '../../lambdas/catalog';
import { revokeKey } from '../../lambdas/store/keys';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { fetchOpenAI } from '../support/openapi';
import { watchResponseStreams, type ResponseStreams } from '../support/response-streams';
import { reloadConfig } from '../../lambdas/config';

/*
 * Keys, tiers and spend caps through the running local server: the authorizer on every request, the tier
 * rules, and a daily cap that holds under 64 parallel streams. Every OpenAI answer is checked against OpenAI's
 * schemas (fetchOpenAI, which the test clients use too).
 */

let gw: TestGateway;
let responses: ResponseStreams;
beforeAll(async () => {
  // No key cache: a revocation shows on the next request (the cache's bound is tested with a clock in authorizer.test.ts).
  process.env.NI_KEY_CACHE_TTL_MS = '0';
  reloadConfig();
  gw = await startTestGateway();
  responses = watchResponseStreams();
});
// A test that failed while the stand-in held a call must not leave it (and the gateway's close) waiting.
afterEach(() => gw.standIn!.release());
afterAll(async () => {
  responses.restore();
  await gw.close();
  delete process.env.NI_KEY_CACHE_TTL_MS;
  reloadConfig();
});

const SONNET = 'anthropic/claude-sonnet-4.5';
const LLAMA = 'meta/llama-3-8b';

type UsagePage = { key_id: string; data: { request_id: string; day: string; status: string; output_tokens: number; cost_micro_cad: number }[] };
const usageOf = async (secret: string, query: string) =>
  (await (await fetch(`${gw.url}/api/usage?${query}`, { headers: { authorization: `Bearer ${secret}` } })).json()) as UsagePage;

/**
 * The client leaves a stream the stand-in holds (ni-standin:hold): once the gateway has seen it go, the provider
 * goes on and the gateway drains the rest.
 */
async function cancel(client: AbortController): Promise<void> {
  client.abort();
  await responses.lastClosed();
  gw.standIn!.release();
}

async function post(secret: string, body: object, headers: Record<string, string> = {}) {
  const res = await fetchOpenAI(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { res, text: await res.text() };
}

describe('privacy tiers', () => {
  test('the default tier (managed Canadian cloud) refuses models processed outside Canada', async () => {
    const { secret } = await gw.client();
    const { res, text } = await post(secret, { model: SONNET, messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(400);
    const err = JSON.parse(text).error;
    expect(err.code).toBe('model_not_available_in_tier');
    expect(err.privacy_tier).toBe('managed_canadian_cloud');
    expect(err.available_models).toEqual(expect.arrayContaining(['meta/llama-3-70b', 'meta/llama-3-8b']));
    expect(err.available_models).not.toContain(SONNET);
    expect(res.headers.get('x-ni-privacy-tier')).toBe('managed_canadian_cloud');
    const ok = await post(secret, { model: LLAMA, messages: [{ role: 'user', content: 'x' }] });
    expect(ok.res.status).toBe(200);
  });

  test('an unpinned key may ask for a tier in its allowed set, by body or header; others are 403', async () => {
    const { secret } = await gw.client({ tier: 'managed_canadian_cloud', allowed_tiers: ['managed_canadian_cloud', 'global'] });
    const byHeader = await post(secret, { model: SONNET, messages: [{ role: 'user', content: 'x' }] }, { 'x-ni-privacy-tier': 'global' });
    expect(byHeader.res.status).toBe(200);
    expect(byHeader.res.headers.get('x-ni-privacy-tier')).toBe('global');
    const byBody = await post(secret, { model: SONNET, ni: { privacy_tier: 'global' }, messages: [{ role: 'user', content: 'x' }] });
    expect(byBody.res.status).toBe(200);
    const refused = await post(secret, { model: LLAMA, messages: [{ role: 'user', content: 'x' }] }, { 'x-ni-privacy-tier': 'canadian_sovereign' });
    expect(refused.res.status).toBe(403);
    expect(JSON.parse(refused.text).error.code).toBe('privacy_tier_not_allowed');
    const unknown = await post(secret, { model: LLAMA, messages: [{ role: 'user', content: 'x' }] }, { 'x-ni-privacy-tier': 'anywhere' });
    expect(unknown.res.status).toBe(403);
  });

  test('a pinned key always runs under its own tier, whatever the client asks', async () => {
    const { secret } = await gw.client({ tier: 'managed_canadian_cloud', tier_pinned: true });
    const r = await post(secret, { model: SONNET, ni: { privacy_tier: 'global' }, messages: [{ role: 'user', content: 'x' }] }, { 'x-ni-privacy-tier': 'global' });
    expect(r.res.status).toBe(400);
    expect(r.res.headers.get('x-ni-privacy-tier')).toBe('managed_canadian_cloud');
    expect(JSON.parse(r.text).error.code).toBe('model_not_available_in_tier');
  });

  test('GET /v1/models lists only what the key can call under its tier', async () => {
    const managed = (await gw.client()).openai;
    const global = (await gw.client({ tier: 'global' })).openai;
    const ids = async (c: OpenAI) => (await c.models.list()).data.map((m) => m.id).sort();
    const inTier = (t: string) => catalog().models.filter((m) => (m.tiers as string[]).includes(t)).map((m) => m.id).sort();
    expect(await ids(managed)).toEqual(inTier('managed_canadian_cloud'));
    expect(await ids(global)).toEqual(inTier('global'));
    expect(await ids(managed)).not.toContain(SONNET);
  });
});

describe('daily spend caps', () => {
  test('64 parallel streams against a cap that fits a few: never over the cap, rejected ones never reach Bedrock', async () => {
    const body = { model: LLAMA, stream: true, max_tokens: 100, messages: [{ role: 'user', content: 'cap test ni-standin:words=20' }] };
    const perRequest = reservationAmount(catalog().byId.get(LLAMA)!, Buffer.byteLength(JSON.stringify(body)), 100);
    const cap = perRequest * 4 + Math.floor(perRequest / 2);
    const { secret, keyId } = await gw.client({ max_spend_per_day: cap, timezone: 'America/Vancouver', max_concurrent_requests: 64 });
    const before = gw.standIn!.requests.filter((r) => r.raw.includes('cap test')).length;
    const results = await Promise.all(Array.from({ length: 64 }, () => post(secret, body)));
    const ok = results.filter((r) => r.res.status === 200);
    const rejected = results.filter((r) => r.res.status === 429);
    expect(ok.length + rejected.length).toBe(64);
    expect(ok.length).toBeGreaterThanOrEqual(4);
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) {
      const err = JSON.parse(r.text).error;
      expect(err).toMatchObject({ type: 'insufficient_quota', code: 'daily_spend_cap_exceeded' });
      expect(Date.parse(err.resets_at)).toBeGreaterThan(Date.now());
      expect(r.res.headers.get('x-should-retry')).toBe('false');
    }
    for (const r of ok) expect(r.text.endsWith('data: [DONE]\n\n')).toBe(true);
    // Only admitted requests went upstream.
    expect(gw.standIn!.requests.filter((r) => r.raw.includes('cap test')).length - before).toBe(ok.length);
    await gw.flush();
    const usage = await usageOf(secret, 'granularity=request&limit=1000');
    expect(usage.key_id).toBe(keyId);
    const billed = usage.data.filter((r) => r.status === 'ok');
    expect(billed).toHaveLength(ok.length);
    const total = billed.reduce((s, r) => s + r.cost_micro_cad, 0);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(cap);
  });

  test('a cancelled stream is billed for everything the provider produced', async () => {
    const { secret } = await gw.client({ tier: 'global' });
    const controller = new AbortController();
    const res = await fetchOpenAI(`${gw.url}/v1/chat/completions`, {
      method: 'POST', signal: controller.signal,
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: LLAMA, stream: true, messages: [{ role: 'user', content: 'cancel me ni-standin:words=60 ni-standin:hold' }] }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    await cancel(controller);
    const requestId = res.headers.get('x-request-id');
    await gw.flush();
    const record = (await usageOf(secret, 'granularity=request')).data.find((r) => r.request_id === requestId);
    expect(record).toBeDefined();
    expect(record!.status).toBe('cancelled');
    // The stand-in's 60 words: what Bedrock would bill, although the client left after the first chunk.
    const fullText = gw.standIn!.requests.find((r) => r.raw.includes('cancel me'));
    expect(fullText?.aborted).toBe(false);
    expect(record!.output_tokens).toBeGreaterThan(60);
    expect(record!.cost_micro_cad).toBeGreaterThan(0);
  });

  /** The request's usage record and its spend day's totals, once every request has settled. */
  async function settled(secret: string, requestId: string | null) {
    await gw.flush();
    const record = (await usageOf(secret, 'granularity=request')).data.find((r) => r.request_id === requestId);
    expect(record).toBeDefined();
    const days = (await (await fetch(`${gw.url}/api/usage?granularity=day&from=${record!.day}&to=${record!.day}`, { headers: { authorization: `Bearer ${secret}` } })).json()) as {
      data: { cost_micro_cad: number; reserved_micro_cad: number }[];
    };
    return { record: record!, day: days.data[0] };
  }

  test('a capped key: a cancelled stream and a non-streamed request whose client left settle to the billed usage and release the rest', async () => {
    const { secret } = await gw.client({ tier: 'global', max_spend_per_day: 50_000_000 });
    const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };

    const streamed = new AbortController();
    const res = await fetchOpenAI(`${gw.url}/v1/chat/completions`, {
      method: 'POST', signal: streamed.signal, headers,
      body: JSON.stringify({ model: LLAMA, stream: true, max_tokens: 1000, messages: [{ role: 'user', content: 'capped cancel ni-standin:words=60 ni-standin:hold' }] }),
    });
    await res.body!.getReader().read();
    await cancel(streamed);
    const cancelled = await settled(secret, res.headers.get('x-request-id'));
    expect(cancelled.record.status).toBe('cancelled');
    expect(cancelled.record.output_tokens).toBeGreaterThan(60); // all the stand-in generated, as Bedrock bills it
    expect(cancelled.day).toMatchObject({ cost_micro_cad: cancelled.record.cost_micro_cad, reserved_micro_cad: 0 });

    // Non-streamed: the client leaves once the provider has the request, before any answer.
    const left = new AbortController();
    const before = gw.standIn!.requests.length;
    const pending = fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST', signal: left.signal, headers,
      body: JSON.stringify({ model: LLAMA, max_tokens: 1000, messages: [{ role: 'user', content: 'capped leave ni-standin:words=60 ni-standin:hold' }] }),
    }).catch((err: unknown) => err);
    await gw.standIn!.held(); // the provider has the request and has begun its answer
    expect(gw.standIn!.requests.slice(before).map((r) => r.raw.includes('capped leave'))).toEqual([true]);
    left.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
    gw.standIn!.release();
    await gw.flush();
    const requestId = (await usageOf(secret, 'granularity=request')).data.find((r) => r.request_id !== res.headers.get('x-request-id'))?.request_id ?? null;
    const abandoned = await settled(secret, requestId);
    expect(abandoned.record.output_tokens).toBeGreaterThan(60);
    expect(abandoned.day).toMatchObject({ cost_micro_cad: cancelled.record.cost_micro_cad + abandoned.record.cost_micro_cad, reserved_micro_cad: 0 });
  });

  test('usage shows up in /api/usage and `ni usage` once the request has settled', async () => {
    const { openai, secret, keyId } = await gw.client();
    const { response } = await openai.chat.completions.create({ model: LLAMA, messages: [{ role: 'user', content: 'usage probe' }] }).withResponse();
    const id = response.headers.get('x-request-id');
    await gw.flush();
    expect((await usageOf(secret, 'granularity=request')).data.map((r) => r.request_id)).toContain(id);
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/ni.js', 'usage', '--key', keyId, '--granularity', 'request', '--json'], { env: { ...process.env }, cwd: `${__dirname}/../..` });
    expect(stdout).toContain(id!);
  });
});

describe('per-key request limits', () => {
  test('a key with a stream in progress and a limit of one: the next request is a 429 in OpenAI\'s shape with retry-after, never reaching Bedrock', async () => {
    const { secret } = await gw.client({ max_concurrent_requests: 1 });
    const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
    const first = await fetchOpenAI(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers,
      body: JSON.stringify({ model: LLAMA, stream: true, messages: [{ role: 'user', content: 'limit holder ni-standin:words=40 ni-standin:hold' }] }),
    });
    const reader = first.body!.getReader();
    await reader.read();
    await gw.standIn!.held(); // the first request is in progress until the stand-in is released

    const before = gw.standIn!.requests.filter((r) => r.raw.includes('limit second')).length;
    const second = await fetchOpenAI(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers, body: JSON.stringify({ model: LLAMA, messages: [{ role: 'user', content: 'limit second' }] }),
    });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(((await second.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_concurrent_requests' });
    expect(gw.standIn!.requests.filter((r) => r.raw.includes('limit second')).length).toBe(before);
    gw.standIn!.release();
    while (!(await reader.read()).done);
  });
});

describe('keys', () => {
  test('a revoked key is refused from its next request on', async () => {
    const { openai, keyId } = await gw.client();
    await openai.models.list();
    await revokeKey(keyId);
    await expect(openai.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  test('malformed and unknown keys are 401 invalid_api_key', async () => {
    for (const auth of ['Bearer nope', 'Bearer ni_live_' + 'a'.repeat(43), 'Basic xyz']) {
      const res = await fetchOpenAI(`${gw.url}/v1/models`, { headers: { authorization: auth } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    }
  });
});
