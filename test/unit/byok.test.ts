import builtIn from '../../lambdas/catalog.json';
import { createGateway } from '../../lambdas/app/gateway';
import type { HttpRequest, ResponseSink } from '../../lambdas/app/http';
import type { GatewayPorts } from '../../lambdas/app/ports';
import {
  azureResidency, byokPlan, byokProviderError, ByokSetInput, type ByokCredential, type ByokCredentials,
} from '../../lambdas/core/byok';
import { buildCatalog, type Route } from '../../lambdas/core/catalog';
import type { CustodyEvent } from '../../lambdas/core/custody';
import type { Principal } from '../../lambdas/core/principal';
import { PROVIDER_NAMES, ROUTE_CHECKS } from '../../lambdas/providers/names';
import { UpstreamError, type CustomerCredential, type Provider } from '../../lambdas/providers/provider';

const catalog = buildCatalog(builtIn, new Set(PROVIDER_NAMES));
const GPT4O = catalog.byId.get('openai/gpt-4o')!;
const SONNET = catalog.byId.get('anthropic/claude-sonnet-4.5')!;
const envelope = { kek: 'local:0', wrapped_key: 'AA==', iv: 'AA==', ciphertext: 'AA==', tag: 'AA==' };
const credential = (c: Partial<ByokCredential> = {}): ByokCredential => ({ envelope, fingerprint: 'sha256:0123456789abcdef', allow_fallback: false, ...c });
const azure = (endpoint: string, deployment_type: ByokCredential['deployment_type'] = 'standard') =>
  credential({ endpoint, deployments: { 'openai/gpt-4o': 'acme-gpt-4o' }, deployment_type });

describe('where a customer Azure resource processes', () => {
  it('is established only by Azure\'s regional endpoint, and only for regional deployments', () => {
    expect(azureResidency('https://canadaeast.api.cognitive.microsoft.com', 'standard')).toEqual({ region: 'canadaeast', jurisdiction: 'CA' });
    expect(azureResidency('https://canadacentral.api.cognitive.microsoft.com/', 'provisioned')).toEqual({ region: 'canadacentral', jurisdiction: 'CA' });
    expect(azureResidency('https://eastus2.api.cognitive.microsoft.com', 'standard')).toEqual({ region: 'eastus2', jurisdiction: 'US' });
    // A resource's own subdomain is a name its owner chose, even one that says Canada.
    expect(azureResidency('https://canadaeast.openai.azure.com', 'standard')).toEqual({ region: 'unknown', jurisdiction: 'GLOBAL' });
    expect(azureResidency('https://canadaeast.api.cognitive.microsoft.com', 'global_standard')).toEqual({ region: 'global', jurisdiction: 'GLOBAL' });
    expect(azureResidency('https://canadaeast.api.cognitive.microsoft.com', 'data_zone')).toEqual({ region: 'global', jurisdiction: 'GLOBAL' });
  });

  it('labels its routes as the catalog\'s own Azure routes are checked', () => {
    for (const endpoint of ['https://canadaeast.api.cognitive.microsoft.com', 'https://acme.openai.azure.com']) {
      for (const type of ['standard', 'global_standard'] as const) {
        const plan = byokPlan(GPT4O, 'global', { azure_openai: azure(endpoint, type) });
        expect(ROUTE_CHECKS.azure_openai!(plan!.routes[0])).toBeNull();
      }
    }
  });
});

describe('which credential serves a request', () => {
  it('the customer\'s on its provider\'s routes the tier allows; none: the operator\'s routes as for any key', () => {
    const ca: ByokCredentials = { azure_openai: azure('https://canadaeast.api.cognitive.microsoft.com') };
    expect(byokPlan(GPT4O, 'managed_canadian_cloud', ca)?.routes).toEqual([
      { provider: 'azure_openai', region: 'canadaeast', upstream_id: 'acme-gpt-4o', jurisdiction: 'CA', canadian_controlled: false, verified: false },
    ]);
    expect(byokPlan(GPT4O, 'canadian_sovereign', ca)).toBeNull();
    const unknownRegion = { azure_openai: azure('https://acme.openai.azure.com') };
    expect(byokPlan(GPT4O, 'managed_canadian_cloud', unknownRegion)).toBeNull();
    // OpenAI's API is global: gpt-4o under a Canadian tier stays on the operator's Canada East route.
    expect(byokPlan(GPT4O, 'managed_canadian_cloud', { openai: credential() })).toBeNull();
    expect(byokPlan(GPT4O, 'global', { openai: credential() })?.routes.map((r) => r.provider)).toEqual(['openai']);
    expect(byokPlan(SONNET, 'global', { anthropic: credential() })?.routes.map((r) => [r.provider, r.upstream_id])).toEqual([['anthropic', 'claude-sonnet-4-5-20250929']]);
    expect(byokPlan(SONNET, 'global', { openai: credential() })).toBeNull();
  });

  it('takes a setting only in a shape that can be used', () => {
    expect(ByokSetInput.safeParse({ provider: 'openai', secret: 'sk-0123456789\n' }).data?.secret).toBe('sk-0123456789');
    expect(ByokSetInput.safeParse({ provider: 'openai', secret: 'sk-01 23456789' }).success).toBe(false);
    expect(ByokSetInput.safeParse({ provider: 'openai', secret: 'sk-0123456789', endpoint: 'https://x.openai.azure.com' }).success).toBe(false);
    expect(ByokSetInput.safeParse({ provider: 'azure_openai', secret: 'k-0123456789', endpoint: 'https://canadaeast.api.cognitive.microsoft.com' }).success).toBe(false);
    expect(ByokSetInput.safeParse({ provider: 'azure_openai', secret: 'k-0123456789', endpoint: 'http://canadaeast.api.cognitive.microsoft.com', deployments: { 'openai/gpt-4o': 'd' }, deployment_type: 'standard' }).success).toBe(false);
  });

  it('names the provider\'s answer in its error, never more', () => {
    expect(byokProviderError('openai', 401, 'invalid_api_key').toBody().error).toMatchObject({ type: 'invalid_request_error', code: 'byok_provider_error', provider: 'openai', provider_status: 401, provider_code: 'invalid_api_key' });
    const limited = byokProviderError('anthropic', 429, 'rate_limit_error');
    expect([limited.status, limited.headers['x-should-retry']]).toEqual([429, 'false']);
  });
});

/* The flow over fake ports, where no provider is simulated: the residency headers and the custody record. */
describe('a BYOK Azure Canada East request in the flow', () => {
  function setup(answer: (credential?: CustomerCredential) => Error | null) {
    const calls: { provider: string; route: Route; credential?: CustomerCredential }[] = [];
    const provider = (name: string): Provider => ({
      async stream(route, _request, _maxTokens, _signal, credential) {
        calls.push({ provider: name, route, credential });
        const err = answer(credential);
        if (err) throw err;
        return {
          requestSha256: 'a'.repeat(64),
          events: (async function* () {
            yield { type: 'text' as const, delta: 'Bonjour.' };
            yield { type: 'finish' as const, reason: 'stop' as const };
            yield { type: 'usage' as const, usage: { input: 1000, output: 100, cache_read: 0, cache_write: 0, reasoning: 0 } };
          })(),
        };
      },
      custodyHops: (route) => [`${name.replace('_', '-')}@${route.region}#${route.upstream_id}`],
    });
    const emitted: CustodyEvent[] = [];
    const reserved: number[] = [];
    let clock = Date.UTC(2026, 11, 4, 15);
    const ports: GatewayPorts = {
      catalog,
      providers: new Map(PROVIDER_NAMES.map((n) => [n, provider(n)])),
      spend: {
        async reserve(p, requestId, amount, model, tier) {
          reserved.push(amount);
          return { keyId: p.keyId, day: '2026-12-04', requestId, amount, model, tier, reserved: true };
        },
        unreserved: (p, requestId, model, tier) => ({ keyId: p.keyId, day: '2026-12-04', requestId, amount: 0, model, tier, reserved: false }),
        settle: async () => undefined,
        release: async () => undefined,
        keep: async () => undefined,
      },
      limits: { admit: async () => null, release: async () => undefined },
      custody: { emit: async (e) => void emitted.push(e), receipt: async () => null },
      byok: { open: async () => 'customer-azure-key', used: async () => undefined },
      metrics: { request: () => undefined },
      log: { info: () => undefined, error: () => undefined },
      now: () => (clock += 5),
      schedule: () => () => undefined,
      deadlines: { acceptMs: 60_000, totalMs: 780_000 },
      gatewayRegion: 'ca-central-1',
      simulatedProviders: new Set(),
    };
    return { gateway: createGateway(ports), calls, emitted, reserved };
  }

  const principal = (c: Partial<ByokCredential> = {}): Principal => ({
    keyId: 'key_1', tier: 'managed_canadian_cloud', tierPinned: false, allowedTiers: ['canadian_sovereign', 'managed_canadian_cloud'],
    maxSpendPerDay: 50_000_000, timezone: 'America/Toronto', piiMode: 'substitute', requestsPerMinute: null, maxConcurrent: null,
    byok: { azure_openai: { ...azure('https://canadaeast.api.cognitive.microsoft.com'), ...c } },
  });

  async function send(gateway: ReturnType<typeof setup>['gateway'], p: Principal) {
    const out = { status: 0, headers: {} as Record<string, string>, body: '' };
    const sink: ResponseSink = { start: (s, h) => Object.assign(out, { status: s, headers: h }), write: (c) => void (out.body += c), end: () => undefined, onClose: () => undefined };
    const req: HttpRequest = { method: 'POST', path: '/v1/chat/completions', headers: {}, query: {}, requestId: 'req-1', principal: p, body: JSON.stringify({ model: 'openai/gpt-4o', max_tokens: 100, messages: [{ role: 'user', content: 'Bonjour' }] }) };
    await gateway.handleV1(req, sink);
    return out;
  }

  it('answers in CA on the customer\'s resource and deployment, with their key, billed the fee', async () => {
    const { gateway, calls, emitted, reserved } = setup(() => null);
    const res = await send(gateway, principal());
    expect(res.status).toBe(200);
    expect(res.headers['x-ni-resolved-jurisdiction']).toBe('CA');
    expect(res.headers['x-ni-custody-path']).toBe('ni-gateway@ca-central-1 > azure-openai@canadaeast#acme-gpt-4o');
    expect(calls).toEqual([expect.objectContaining({ provider: 'azure_openai', credential: { secret: 'customer-azure-key', endpoint: 'https://canadaeast.api.cognitive.microsoft.com' } })]);
    const fee = GPT4O.byok_fee_prices;
    expect(emitted[0]).toMatchObject({
      privacy_tier: 'managed_canadian_cloud', jurisdiction: 'CA',
      credential: { owner: 'customer', provider: 'azure_openai', fallback: false },
      cost_micro_cad: Math.ceil(1000 * fee.input / 1e6) + Math.ceil(100 * fee.output / 1e6),
      provider_cost_estimate_micro_cad: Math.ceil(1000 * GPT4O.prices.input / 1e6) + Math.ceil(100 * GPT4O.prices.output / 1e6),
    });
    expect(reserved[0]).toBeLessThan(Math.ceil(100 * GPT4O.prices.output / 1e6)); // reserved at the fee
  });

  it('refused: byok_provider_error, and the operator\'s Azure route (same jurisdiction) is never called', async () => {
    const { gateway, calls, emitted } = setup(() => new UpstreamError('not_enabled', undefined, { status: 401, code: '401' }));
    const res = await send(gateway, principal());
    expect(res.status).toBe(424);
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'byok_provider_error', provider: 'azure_openai', provider_status: 401 });
    expect(calls.map((c) => c.credential?.secret)).toEqual(['customer-azure-key']);
    expect(emitted[0].attempts).toEqual([expect.objectContaining({ credential: 'customer', outcome: 'not_enabled' })]);
  });

  it('with fallback allowed, the operator\'s Canada East route serves, and the record says so', async () => {
    const { gateway, calls, emitted, reserved } = setup((c) => (c ? new UpstreamError('throttled', undefined, { status: 429, code: 'insufficient_quota' }) : null));
    const res = await send(gateway, principal({ allow_fallback: true }));
    expect(res.status).toBe(200);
    expect(calls.map((c) => [c.route.upstream_id, c.credential?.secret ?? 'operator'])).toEqual([['acme-gpt-4o', 'customer-azure-key'], ['gpt-4o', 'operator']]);
    expect(res.headers['x-ni-custody-path']).toBe('ni-gateway@ca-central-1 > azure-openai@canadaeast#gpt-4o');
    expect(emitted[0]).toMatchObject({ credential: { owner: 'operator', fallback: true }, cost_micro_cad: Math.ceil(1000 * GPT4O.prices.input / 1e6) + Math.ceil(100 * GPT4O.prices.output / 1e6) });
    expect(emitted[0].provider_cost_estimate_micro_cad).toBeUndefined();
    expect(reserved[0]).toBeGreaterThanOrEqual(Math.ceil(100 * GPT4O.prices.output / 1e6)); // it may be billed the list price
  });
});
