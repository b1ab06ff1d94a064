import '../support/verbose-logs';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { clearByok, setByok, showByok } from '../../lambdas/app/byok';
import { catalog } from '../../lambdas/catalog';
import { fingerprintOf } from '../../lambdas/core/byok';
import { hashSecret } from '../../lambdas/core/keys';
import { costOf } from '../../lambdas/core/pricing';
import { fromAuthorizerContext } from '../../lambdas/core/principal';
import { reloadConfig } from '../../lambdas/config';
import { openSecret } from '../../lambdas/store/byok-keyring';
import { ddb } from '../../lambdas/store/ddb';
import { createKey } from '../../lambdas/store/keys';
import { tableName } from '../../lambdas/store/tables';
import { queryUsage } from '../../lambdas/store/usage';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * A key's own provider credentials (BYOK), end to end against the local runtime: the stand-ins record the credential
 * each request carried, the store and the records are read raw, and every log line the process writes is kept.
 */

let gw: TestGateway;
const logged: string[] = [];
let restore: () => void;

const customerSecret = (prefix: string) => `${prefix}-customer-${randomBytes(12).toString('hex')}`;
const GPT41 = 'openai/gpt-4.1';
const GPT4O = 'openai/gpt-4o';
const SONNET = 'anthropic/claude-sonnet-4.5';
const today = () => new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  const capture = (stream: NodeJS.WriteStream) => {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      logged.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    return () => void (stream.write = write);
  };
  const restoreOut = capture(process.stdout);
  const restoreErr = capture(process.stderr);
  restore = () => (restoreOut(), restoreErr());
  gw = await startTestGateway();
});
afterAll(async () => {
  restore();
  process.env.NI_LOG_LEVEL = 'ERROR';
  reloadConfig();
  await gw.close();
});

const secretsSeen: string[] = [];
/** A key of the gateway's with a customer credential for `provider` set through the operations module. */
async function byokClient(provider: 'openai' | 'anthropic' | 'azure_openai', keyOpts: Parameters<TestGateway['client']>[0] = { tier: 'global' }, extra: object = {}) {
  const client = await gw.client(keyOpts);
  const secret = customerSecret(provider);
  secretsSeen.push(secret);
  await setByok(client.keyId, { provider, secret, ...extra });
  return { ...client, customer: secret };
}

async function requestsOf(keyId: string) {
  await gw.flush();
  return (await queryUsage(keyId, { from: today(), to: today(), granularity: 'request', limit: 100 })).data;
}

describe('storage', () => {
  it('keeps only an envelope: no stored item holds the secret, and it opens only for its key and provider', async () => {
    const { keyId, secret, customer } = await byokClient('openai');
    const item = (await ddb().send(new GetCommand({ TableName: tableName('keys'), Key: { pk: `hash#${hashSecret(secret)}`, sk: 'key' } }))).Item!;
    const envelope = item.byok.openai.envelope;
    expect(envelope).toEqual({ kek: expect.stringMatching(/^local:[0-9a-f]{16}$/), wrapped_key: expect.any(String), iv: expect.any(String), ciphertext: expect.any(String), tag: expect.any(String) });
    expect(item.byok.openai).toMatchObject({ fingerprint: fingerprintOf(customer), last4: customer.slice(-4), allow_fallback: false });
    const all = JSON.stringify((await ddb().send(new ScanCommand({ TableName: tableName('keys') }))).Items);
    expect(all).not.toContain(customer);
    expect(all).not.toContain(customer.slice(0, -4)); // nor any of it beyond the last 4
    await expect(openSecret(keyId, 'openai', envelope)).resolves.toBe(customer);
    await expect(openSecret(keyId, 'anthropic', envelope)).rejects.toThrow();
    await expect(openSecret('key_other', 'openai', envelope)).rejects.toThrow();

    const [shown] = await showByok(keyId);
    expect(shown).toMatchObject({ provider: 'openai', masked: `…${customer.slice(-4)}`, fingerprint: fingerprintOf(customer), last_used_at: null, allow_fallback: false });
    expect(JSON.stringify(shown)).not.toContain(customer.slice(0, -4));
    expect(shown.routes.map((r) => r.model)).toEqual(expect.arrayContaining([GPT41, GPT4O]));
  });

  it('refuses a credential the key could never use, and input it cannot take, without echoing the secret', async () => {
    const { keyId } = await gw.client({ tier: 'managed_canadian_cloud' }); // Canadian tiers only
    const secret = customerSecret('sk');
    await expect(setByok(keyId, { provider: 'openai', secret })).rejects.toMatchObject({ status: 400, code: 'byok_not_usable_in_tiers' });
    // An Azure resource's own subdomain does not establish its region: not Canadian.
    await expect(setByok(keyId, { provider: 'azure_openai', secret, endpoint: 'https://acme-canada.openai.azure.com', deployments: { [GPT4O]: 'gpt4o' }, deployment_type: 'standard' }))
      .rejects.toMatchObject({ status: 400, code: 'byok_not_usable_in_tiers', param: 'endpoint' });
    await expect(setByok(keyId, { provider: 'azure_openai', secret, endpoint: 'https://canadaeast.api.cognitive.microsoft.com', deployments: { [GPT4O]: 'gpt4o' }, deployment_type: 'global_standard' }))
      .rejects.toMatchObject({ code: 'byok_not_usable_in_tiers' });
    const bad = await setByok(keyId, { provider: 'openai', secret: `${secret} and more` }).catch((e: Error) => e);
    expect(bad).toMatchObject({ status: 400, code: 'invalid_byok_settings' });
    expect((bad as Error).message).not.toContain(secret);
    await expect(setByok('key_missing', { provider: 'openai', secret })).rejects.toMatchObject({ status: 404 });
  });
});

describe('requests on the customer credential', () => {
  it('OpenAI: the stand-in receives exactly the customer credential; the fee is billed, the provider cost estimated apart', async () => {
    const { openai, keyId, customer, secret } = await byokClient('openai');
    const standIn = gw.openaiStandIns.openai!;
    const before = standIn.requests.length;
    const { data, response } = await openai.chat.completions.create({ model: GPT41, messages: [{ role: 'user', content: 'Hello' }] }).withResponse();
    expect(data.choices[0].message.content).toBe('Hello from the openai stand-in.');
    expect(standIn.requests.slice(before).map((r) => r.credential)).toEqual([customer]);

    const [usage] = await requestsOf(keyId);
    const model = catalog().byId.get(GPT41)!;
    const tokens = { input: usage.input_tokens, output: usage.output_tokens, cache_read: usage.cache_read_tokens, cache_write: usage.cache_write_tokens, reasoning: 0 };
    expect(usage).toMatchObject({
      credential: 'customer',
      cost_micro_cad: costOf(tokens, model.byok_fee_prices),
      provider_cost_estimate_micro_cad: costOf(tokens, model.prices),
    });
    // 5% of the list price per token class, rounded up to whole micro-CAD per million tokens.
    expect(model.byok_fee_prices).toEqual({ input: 138_000, output: 552_000, cache_read: 34_500, cache_write: 138_000 });
    expect(usage.cost_micro_cad).toBeLessThan(usage.provider_cost_estimate_micro_cad!);

    const receipt = await (await fetch(`${gw.url}/v1/custody/${response.headers.get('x-request-id')}`, { headers: { authorization: `Bearer ${secret}` } })).json() as { entry: { event: Record<string, unknown> } };
    expect(receipt.entry.event).toMatchObject({
      credential: { owner: 'customer', provider: 'openai', fingerprint: fingerprintOf(customer), fallback: false },
      cost_micro_cad: usage.cost_micro_cad,
      provider_cost_estimate_micro_cad: usage.provider_cost_estimate_micro_cad,
      attempts: [expect.objectContaining({ provider: 'openai', credential: 'customer', outcome: 'ok' })],
    });
    expect(JSON.stringify(receipt)).not.toContain(customer.slice(0, -4));
    const [shown] = await showByok(keyId);
    expect(shown.last_used_at).not.toBeNull();
  });

  it('Anthropic: Claude is served on Anthropic\'s API with the customer key, not on Bedrock', async () => {
    const { openai, customer } = await byokClient('anthropic');
    const standIn = gw.anthropicStandIn!;
    standIn.accept(customer);
    const bedrockBefore = gw.standIn!.requests.length;
    const before = standIn.requests.length;
    const { response } = await openai.chat.completions.create({ model: SONNET, messages: [{ role: 'user', content: 'Hello' }] }).withResponse();
    expect(standIn.requests.slice(before).map((r) => r.apiKey)).toEqual([customer]);
    expect(gw.standIn!.requests.length).toBe(bedrockBefore);
    expect(response.headers.get('x-ni-custody-path')).toContain('anthropic-standin@loopback#claude-sonnet-4-5');
  });

  it('Azure OpenAI in Canada East: the customer resource\'s deployment answers under managed_canadian_cloud', async () => {
    const { openai, keyId, customer } = await byokClient('azure_openai', { tier: 'managed_canadian_cloud' }, {
      endpoint: 'https://canadaeast.api.cognitive.microsoft.com', deployments: { [GPT4O]: 'acme-gpt-4o' }, deployment_type: 'standard',
    });
    const standIn = gw.openaiStandIns.azure_openai!;
    const before = standIn.requests.length;
    const { data, response } = await openai.chat.completions.create({ model: GPT4O, messages: [{ role: 'user', content: 'Bonjour' }] }).withResponse();
    expect(data.choices[0].message.content).toBe('Hello from the azure stand-in.');
    expect(response.headers.get('x-ni-privacy-tier')).toBe('managed_canadian_cloud');
    expect(standIn.requests.slice(before).map((r) => [r.path, r.credential])).toEqual([['/openai/deployments/acme-gpt-4o/chat/completions', customer]]);
    const [usage] = await requestsOf(keyId);
    expect(usage).toMatchObject({ credential: 'customer', tier: 'managed_canadian_cloud', route: { provider: 'azure_openai', region: 'canadaeast', upstream_id: 'acme-gpt-4o' } });
  });
});

describe('no silent fallback', () => {
  it('a refused customer credential is byok_provider_error, and nothing goes out with the operator credential', async () => {
    const { openai, keyId, customer } = await byokClient('openai');
    const standIn = gw.openaiStandIns.openai!;
    standIn.refuse(customer);
    const before = standIn.requests.length;
    const err = await openai.chat.completions.create({ model: GPT41, messages: [{ role: 'user', content: 'Hello' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(424);
    expect((err as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({ code: 'byok_provider_error', provider: 'openai', provider_status: 401, provider_code: 'invalid_api_key' });
    expect((err as Error).message).not.toContain(customer.slice(0, -4));
    // One call, with the customer's credential: no retry, and none with the stand-in (operator) credential.
    expect(standIn.requests.slice(before).map((r) => r.credential)).toEqual([customer]);
    const [usage] = await requestsOf(keyId);
    expect(usage).toMatchObject({ credential: 'customer', error_code: 'byok_provider_error', cost_micro_cad: 0 });
  });

  it('out of quota: 429 byok_provider_error naming the provider\'s status, not retried', async () => {
    const { openai, customer } = await byokClient('openai');
    const standIn = gw.openaiStandIns.openai!;
    standIn.outOfQuota(customer);
    const before = standIn.requests.length;
    const err = await openai.chat.completions.create({ model: GPT41, messages: [{ role: 'user', content: 'Hello' }] }).catch((e: unknown) => e) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(429);
    expect(err.error).toMatchObject({ code: 'byok_provider_error', provider_status: 429, provider_code: 'insufficient_quota' });
    expect(err.headers?.get('x-should-retry')).toBe('false');
    expect(standIn.requests.slice(before).map((r) => r.credential)).toEqual([customer]);
  });

  it('a key that allows it falls back to the operator credential, at the list price, and custody and usage say so', async () => {
    const { openai, keyId, customer, secret } = await byokClient('openai', { tier: 'global' }, { allow_fallback: true });
    const standIn = gw.openaiStandIns.openai!;
    standIn.refuse(customer);
    const before = standIn.requests.length;
    const { data, response } = await openai.chat.completions.create({ model: GPT41, messages: [{ role: 'user', content: 'Hello' }] }).withResponse();
    expect(data.choices[0].message.content).toBe('Hello from the openai stand-in.');
    expect(standIn.requests.slice(before).map((r) => r.credential)).toEqual([customer, 'stand-in']);
    const [usage] = await requestsOf(keyId);
    const tokens = { input: usage.input_tokens, output: usage.output_tokens, cache_read: usage.cache_read_tokens, cache_write: usage.cache_write_tokens, reasoning: 0 };
    expect(usage).toMatchObject({ credential: 'operator_fallback', cost_micro_cad: costOf(tokens, catalog().byId.get(GPT41)!.prices), provider_cost_estimate_micro_cad: null });
    const receipt = await (await fetch(`${gw.url}/v1/custody/${response.headers.get('x-request-id')}`, { headers: { authorization: `Bearer ${secret}` } })).json() as { entry: { event: Record<string, unknown> } };
    expect(receipt.entry.event).toMatchObject({
      credential: { owner: 'operator', provider: 'openai', fallback: true },
      attempts: [expect.objectContaining({ credential: 'customer', outcome: 'not_enabled' }), expect.objectContaining({ credential: 'operator', outcome: 'ok' })],
    });
  });
});

describe('the daily cap applies to what the gateway bills', () => {
  it('admits on the fee a request whose list-price worst case is over the cap', async () => {
    const model = catalog().byId.get(GPT41)!;
    // The worst case of this request at list price: 8192 output tokens at 11.04 CAD/M alone is about 0.09 CAD.
    const cap = 20_000; // 0.02 CAD: above the fee's worst case (5%), below the list price's
    const body = { model: GPT41, max_tokens: 8192, messages: [{ role: 'user' as const, content: 'Hello' }] };
    const plain = await gw.client({ tier: 'global', max_spend_per_day: cap });
    await expect(plain.openai.chat.completions.create(body)).rejects.toMatchObject({ status: 429, error: expect.objectContaining({ code: 'daily_spend_cap_exceeded' }) });
    const { openai, keyId } = await byokClient('openai', { tier: 'global', max_spend_per_day: cap });
    await openai.chat.completions.create(body);
    const [usage] = await requestsOf(keyId);
    expect(usage.cost_micro_cad).toBeGreaterThan(0);
    expect(usage.cost_micro_cad).toBeLessThanOrEqual(cap);
    expect(model.byok_fee_prices.output * 8192 / 1e6).toBeLessThan(cap);
  });
});

describe('rotation and clearing', () => {
  it('take effect once the key cache\'s TTL has passed (the authorizer\'s clock injected)', async () => {
    const { record, secret } = await createKey({ name: 'rotating', tier: 'global' });
    const first = customerSecret('sk');
    const second = customerSecret('sk');
    secretsSeen.push(first, second);
    let clock = 1_000_000;
    const ttlMs = 5_000;
    const { createAuthorizer } = await import('../../lambdas/handlers/authorizer');
    const authorize = createAuthorizer({ ttlMs, now: () => clock });
    const event = { headers: { Authorization: `Bearer ${secret}` }, methodArn: 'arn:aws:execute-api:ca-central-1:1:api/stage/POST/v1/chat/completions' } as never;
    /** The credential a request would carry now: the principal the authorizer hands over, opened. */
    const credentialNow = async () => {
      const byok = fromAuthorizerContext((await authorize(event)).context).byok?.openai;
      return byok ? openSecret(record.id, 'openai', byok.envelope) : null;
    };

    await setByok(record.id, { provider: 'openai', secret: first });
    expect(await credentialNow()).toBe(first);
    await setByok(record.id, { provider: 'openai', secret: second });
    clock += ttlMs - 1;
    expect(await credentialNow()).toBe(first); // still the cached record
    clock += 1;
    expect(await credentialNow()).toBe(second);

    expect(await clearByok(record.id)).toEqual(['openai']);
    expect(await credentialNow()).toBe(second);
    clock += ttlMs;
    expect(await credentialNow()).toBeNull();
    expect(await showByok(record.id)).toEqual([]);
  });
});

describe('logs', () => {
  it('hold no customer credential, nor any of it past its last 4 characters, from anything these tests did', async () => {
    await gw.flush();
    expect(secretsSeen.length).toBeGreaterThan(5);
    expect(logged.some((l) => l.includes('"credential":"customer"'))).toBe(true); // the request lines were captured
    for (const line of logged) for (const s of secretsSeen) expect(line).not.toContain(s.slice(0, -4));
  });
});
