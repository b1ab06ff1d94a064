import { createPublicKey, verify } from 'node:crypto';
import OpenAI from 'openai';
import { reloadConfig } from '../../lambdas/config';
import { canonicalJson } from '../../lambdas/core/ledger';
import { DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_REQUESTS_PER_MINUTE } from '../../lambdas/core/rate-limits';
import { ledgerSigner, reportSigner } from '../../lambdas/store/signer';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { fetchOpenAI } from '../support/openapi';
import { portalUser } from '../support/portal';

/*
 * The portal's JSON API through the running local server: sign-in with one-time links, keys created and revoked
 * by a signed-in user, usage and receipts of the requests made with them, residency reports, and the isolation
 * of accounts: whatever ids another account's user sends, it never reads or changes this account's data.
 */

let gw: TestGateway;
beforeAll(async () => {
  process.env.NI_KEY_CACHE_TTL_MS = '0'; // revocation is seen by the next request
  reloadConfig();
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw.close();
  delete process.env.NI_KEY_CACHE_TTL_MS;
  reloadConfig();
});

const MODEL = 'meta/llama-3-70b';

test('one account creates a key, uses it, sees its usage, receipt and report; another account sees none of it', async () => {
  const alice = await portalUser(gw.url, 'Alice');
  const bob = await portalUser(gw.url, 'Bob');

  const created = await alice.call('POST', 'keys', { name: 'ci', project: 'builds', tier: 'managed_canadian_cloud', max_spend_per_day_cad: '5.00', timezone: 'America/Vancouver', pii_mode: 'substitute' });
  expect(created.status).toBe(201);
  const { key, secret } = await created.json() as { key: { id: string; prefix: string; max_spend_per_day_micro_cad: number; timezone: string }; secret: string };
  expect(secret).toMatch(/^ni_live_/);
  expect(key).toMatchObject({ max_spend_per_day_micro_cad: 5_000_000, timezone: 'America/Vancouver' });
  expect(secret.startsWith(key.prefix.replace('…', ''))).toBe(true);

  const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0, fetch: fetchOpenAI });
  const answer = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Write to jane.tremblay@videotron.ca' }] }).withResponse();
  const requestId = answer.response.headers.get('x-request-id')!;
  await gw.flush();

  // Alice sees her key (with today's spend), the request, its receipt, and the month's report.
  const keys = await alice.json<{ data: { id: string; spend_today_micro_cad: number; last_used_at: string | null }[] }>('GET', 'keys');
  expect(keys.data.map((k) => k.id)).toEqual([key.id]);
  expect(keys.data[0].spend_today_micro_cad).toBeGreaterThan(0);
  expect(keys.data[0].last_used_at).not.toBeNull();
  const requests = await alice.json<{ data: { request_id: string; key_id: string; key_name: string; jurisdiction: string; ended_at: string }[] }>('GET', 'requests');
  expect(requests.data).toEqual([expect.objectContaining({ request_id: requestId, key_id: key.id, key_name: 'ci', jurisdiction: 'SIMULATED' })]);
  // Polling from the newest time it has returns that request again (same time), nothing older.
  const after = await alice.json<{ data: { request_id: string }[] }>('GET', `requests?after=${encodeURIComponent(requests.data[0].ended_at)}`);
  expect(after.data.map((r) => r.request_id)).toEqual([requestId]);
  const receipt = await alice.json<{ request_id: string; entry: { event: { key_id: string } } }>('GET', `custody/${key.id}/${requestId}`);
  expect(receipt).toMatchObject({ request_id: requestId, entry: { event: { key_id: key.id } } });
  const usage = await alice.json<{ keys: { key_id: string; days: { requests: number }[] }[] }>('GET', 'usage');
  expect(usage.keys).toEqual([expect.objectContaining({ key_id: key.id, days: [expect.objectContaining({ requests: 1 })] })]);

  const month = new Date().toISOString().slice(0, 7);
  const csv = await alice.call('GET', `reports/residency?key=${key.id}&month=${month}&format=csv`);
  expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
  const csvText = await csv.text();
  expect(csvText).toContain('jurisdiction_tier,SIMULATED/managed_canadian_cloud,1');
  expect(csvText).toContain('pii_substitutions,EMAIL,1');
  expect(csvText).toContain('chain,verified,true');
  const signed = await alice.json<{ report: { requests: number; chain: { verified: boolean; head: { seq: number } } }; signature: { value: string } }>('GET', `reports/residency?key=${key.id}&month=${month}`);
  expect(signed.report).toMatchObject({ requests: 1, chain: { verified: true, head: { seq: 1 } } });
  // Checked with the public key the portal publishes, which is the reports' key, not the ledger's.
  const published = await alice.json<{ public_key_pem: string; signing_key: string }>('GET', 'reports/signing-key');
  const publicKey = createPublicKey(published.public_key_pem);
  expect(publicKey.export({ format: 'der', type: 'spki' })).toEqual((await reportSigner().publicKey()).export({ format: 'der', type: 'spki' }));
  expect(published.signing_key).not.toBe(ledgerSigner().keyRef);
  expect(verify('sha256', Buffer.from(canonicalJson(signed.report)), publicKey, Buffer.from(signed.signature.value, 'base64'))).toBe(true);

  // Bob: none of it, whichever ids he sends.
  const bobKey = await bob.json<{ key: { id: string } }>('POST', 'keys', { name: 'bob', tier: 'global' });
  expect((await bob.json<{ data: { id: string }[] }>('GET', 'keys')).data.map((k) => k.id)).toEqual([bobKey.key.id]);
  expect((await alice.json<{ data: { id: string }[] }>('GET', 'keys')).data.map((k) => k.id)).toEqual([key.id]);
  expect((await bob.json<{ data: unknown[] }>('GET', 'requests')).data).toEqual([]);
  expect((await bob.json<{ keys: { key_id: string }[] }>('GET', 'usage')).keys.map((k) => k.key_id)).toEqual([bobKey.key.id]);
  for (const path of [`custody/${key.id}/${requestId}`, `custody/${bobKey.key.id}/${requestId}`, `reports/residency?key=${key.id}&month=${month}`]) {
    const res = await bob.call('GET', path);
    expect([path, res.status]).toEqual([path, 404]);
  }
  expect((await bob.call('POST', `keys/${key.id}/revoke`, {})).status).toBe(404);
  // A key created by Bob with Alice's account id in the body: refused, not moved.
  expect((await bob.call('POST', 'keys', { name: 'x', tier: 'global', account_id: alice.account.id })).status).toBe(400);

  // BYOK on her key: the secret goes in, only a masked view comes out, anywhere; Bob can neither see nor change it.
  // (The same operations as `ni keys byok`: OpenAI's routes process in the US, which a Canadian-tier key may not use.)
  const customer = 'sk-customer-credential-0123456789abcd';
  const refused = await alice.json<{ error: { code: string } }>('POST', `keys/${key.id}/byok`, { provider: 'openai', secret: customer });
  expect(refused.error.code).toBe('byok_not_usable_in_tiers');
  const globalKey = (await alice.json<{ key: { id: string } }>('POST', 'keys', { name: 'byok', tier: 'global' })).key;
  const set = await alice.call('POST', `keys/${globalKey.id}/byok`, { provider: 'openai', secret: customer });
  expect(set.status).toBe(200);
  expect(await set.json()).toMatchObject({ provider: 'openai', masked: '…abcd' });
  const listedText = await (await alice.call('GET', 'keys')).text();
  expect(listedText).not.toContain(customer);
  expect(listedText).not.toContain('envelope');
  expect(JSON.parse(listedText).data.find((k: { id: string }) => k.id === globalKey.id).byok).toEqual([expect.objectContaining({ provider: 'openai', masked: '…abcd' })]);
  expect(JSON.stringify(await alice.json('GET', `keys/${globalKey.id}/byok`))).not.toContain(customer);
  expect((await bob.call('GET', `keys/${globalKey.id}/byok`)).status).toBe(404);
  expect((await bob.call('POST', `keys/${globalKey.id}/byok`, { provider: 'openai', secret: 'sk-bob-replacing-it-000' })).status).toBe(404);
  expect((await bob.call('POST', `keys/${globalKey.id}/byok/clear`, {})).status).toBe(404);
  expect((await alice.json<{ data: { provider: string }[] }>('GET', `keys/${globalKey.id}/byok`)).data.map((b) => b.provider)).toEqual(['openai']);
  expect(await alice.json('POST', `keys/${globalKey.id}/byok/clear`, { provider: 'openai' })).toEqual({ cleared: ['openai'] });

  // Alice revokes her key: the next request with it is refused.
  expect((await alice.call('POST', `keys/${key.id}/revoke`, {})).status).toBe(200);
  await expect(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 401 });
});

test('a key\'s request limits: the defaults, chosen ones or none at creation, changed later by its own account only', async () => {
  const dana = await portalUser(gw.url, 'Dana');
  const erin = await portalUser(gw.url, 'Erin');
  type Limits = { id: string; requests_per_minute: number | null; max_concurrent_requests: number | null };
  const create = async (body: object) => (await dana.json<{ key: Limits }>('POST', 'keys', { tier: 'global', ...body })).key;

  const listed = await dana.json<{ limit_defaults: object }>('GET', 'keys');
  expect(listed.limit_defaults).toEqual({ requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE, max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS });
  const defaults = await create({ name: 'defaults' });
  expect(defaults).toMatchObject({ requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE, max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS });
  const chosen = await create({ name: 'chosen', requests_per_minute: 60, max_concurrent_requests: 2 });
  expect(chosen).toMatchObject({ requests_per_minute: 60, max_concurrent_requests: 2 });
  const unlimited = await create({ name: 'none', requests_per_minute: null, max_concurrent_requests: null });
  expect(unlimited).toMatchObject({ requests_per_minute: null, max_concurrent_requests: null });
  // Validated as KeyOptions validates them: whole numbers of at least 1.
  for (const bad of [{ requests_per_minute: 0 }, { max_concurrent_requests: 1.5 }, { requests_per_minute: '60' }]) {
    const res = await dana.call('POST', 'keys', { name: 'bad', tier: 'global', ...bad });
    expect([bad, res.status]).toEqual([bad, 400]);
  }
  const stored = async () => new Map((await dana.json<{ data: Limits[] }>('GET', 'keys')).data.map((k) => [k.id, [k.requests_per_minute, k.max_concurrent_requests]]));
  expect((await stored()).get(chosen.id)).toEqual([60, 2]);

  // A change sets the limits given and keeps the other, like `ni keys update`.
  expect((await dana.json<{ key: Limits }>('POST', `keys/${chosen.id}/limits`, { max_concurrent_requests: null })).key)
    .toMatchObject({ requests_per_minute: 60, max_concurrent_requests: null });
  expect((await dana.call('POST', `keys/${chosen.id}/limits`, { requests_per_minute: -1 })).status).toBe(400);
  expect((await dana.call('POST', `keys/${chosen.id}/limits`, { tier: 'global' })).status).toBe(400);
  // Erin, in another account, cannot change Dana's key: a 404, and its limits stay as they were.
  expect((await erin.call('POST', `keys/${chosen.id}/limits`, { requests_per_minute: null })).status).toBe(404);
  expect((await stored()).get(chosen.id)).toEqual([60, null]);
  expect((await stored()).get(defaults.id)).toEqual([DEFAULT_REQUESTS_PER_MINUTE, DEFAULT_MAX_CONCURRENT_REQUESTS]);
});

test('sign-in links work once; the API answers nobody else, same-origin only, with the portal headers', async () => {
  const carol = await portalUser(gw.url, 'Carol');
  const again = await fetch(`${gw.url}/api/portal/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: carol.code }) });
  expect(again.status).toBe(401);
  for (const authorization of [undefined, 'Bearer forged-token', `Bearer ${carol.token}x`]) {
    const res = await fetch(`${gw.url}/api/portal/keys`, { headers: authorization ? { authorization } : {} });
    expect(res.status).toBe(401);
    expect((await res.json() as { error: { code: string } }).error.code).toBe('not_signed_in');
  }
  const me = await carol.call('GET', 'me');
  expect(await me.json()).toMatchObject({ user: { email: 'carol@example.ca' }, account: { id: carol.account.id, name: 'Carol' } });
  expect(me.headers.get('access-control-allow-origin')).toBeNull();
  expect(me.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(me.headers.get('x-frame-options')).toBe('DENY');
  expect(me.headers.get('cache-control')).toBe('no-store');
  // A preflight gets no CORS grant; a form-encoded post (no preflight) changes nothing.
  const preflight = await fetch(`${gw.url}/api/portal/keys`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });
  expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  const form = await fetch(`${gw.url}/api/portal/keys`, { method: 'POST', headers: { authorization: `Bearer ${carol.token}`, 'content-type': 'text/plain' }, body: '{"name":"x","tier":"global"}' });
  expect(form.status).toBe(415);
  expect((await carol.json<{ data: unknown[] }>('GET', 'keys')).data).toEqual([]);
});
