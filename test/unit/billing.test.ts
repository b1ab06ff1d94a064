import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { publicCatalog, reservationAmount } from '../../lambdas/core/billing';
import { buildCatalog } from '../../lambdas/core/catalog';
import { catalog } from '../../lambdas/catalog';
import { parseCad } from '../../lambdas/core/pricing';
import { handler } from '../../lambdas/handlers/billing';
import { PROVIDER_NAMES } from '../../lambdas/providers/names';

const SERVED: ReadonlySet<string> = new Set(PROVIDER_NAMES);

const get = (headers: Record<string, string> = {}) =>
  handler({ httpMethod: 'GET', path: '/api/billing/models', headers, queryStringParameters: null, requestContext: { requestId: 'req-1' } } as unknown as APIGatewayProxyEvent, {} as Context);

describe('publicCatalog', () => {
  const c = catalog();
  const { models } = publicCatalog(c);

  it('states the BYOK routing-only fee as a fraction of the list price', () => {
    expect(publicCatalog(c).byok_routing_fee_fraction_of_list_price).toBe('0.05');
  });

  it('lists every served model and nothing else', () => {
    expect(models.map((m) => m.model_id)).toEqual(c.models.map((m) => m.id));
    expect(models.length).toBeGreaterThan(0);
    const ids = models.map((m) => m.model_id);
    // The data may keep models whose provider has no client: the price list lists exactly the served ones.
    const served = [...c.byId.values()].filter((m) => m.served.length > 0).map((m) => m.id);
    expect([...ids].sort()).toEqual(served.sort());
  });

  it('publishes the derived tiers and jurisdictions, exact CAD prices and limits', () => {
    const sonnet = models.find((m) => m.model_id === 'anthropic/claude-sonnet-4.5')!;
    expect(sonnet).toEqual({
      model_id: 'anthropic/claude-sonnet-4.5',
      provider: 'anthropic',
      display_name: 'Claude Sonnet 4.5',
      privacy_tiers: ['global'],
      jurisdictions: ['US', 'GLOBAL'],
      pricing: {
        currency: 'CAD', input_per_mtok: '4.14', output_per_mtok: '20.70', cache_read_per_mtok: '0.414', cache_write_per_mtok: '5.175',
        // 5% of each, rounded up to whole micro-CAD.
        byok_routing_fee: { input_per_mtok: '0.207', output_per_mtok: '1.035', cache_read_per_mtok: '0.0207', cache_write_per_mtok: '0.25875' },
      },
      context_window: 200000,
      max_output_tokens: 64000,
      capabilities: { streaming: true, tools: true, vision: true },
    });
    const llama = models.find((m) => m.model_id === 'meta/llama-3-70b')!;
    expect(llama.privacy_tiers).toEqual(['managed_canadian_cloud', 'global']);
    expect(llama.jurisdictions).toEqual(['CA']);
    // No cache prices in the data: both fall back to the input price.
    expect(llama.pricing).toMatchObject({ input_per_mtok: '4.86', cache_read_per_mtok: '4.86', cache_write_per_mtok: '4.86' });
    for (const m of models) {
      expect(m.privacy_tiers).toEqual(c.byId.get(m.model_id)!.tiers);
      for (const p of [m.pricing.input_per_mtok, m.pricing.output_per_mtok, m.pricing.cache_read_per_mtok, m.pricing.cache_write_per_mtok]) {
        expect(p).toMatch(/^\d+\.\d{2,6}$/);
      }
      expect(parseCad(m.pricing.output_per_mtok)).toBe(c.byId.get(m.model_id)!.prices.output);
    }
  });

  it('derives tiers from a canadian-controlled route', () => {
    const own = buildCatalog({
      version: 1,
      models: [{
        id: 'ni/own', display_name: 'Own', provider: 'ni', context_window: 1000, max_output_tokens: 100,
        capabilities: { streaming: true, tools: false, vision: false },
        pricing: { input_per_mtok: '1', output_per_mtok: '2.5' },
        routes: [{ provider: 'bedrock', region: 'ca-central-1', upstream_id: 'x.y', jurisdiction: 'CA', canadian_controlled: true }],
      }],
    }, SERVED);
    expect(publicCatalog(own).models[0]).toMatchObject({
      privacy_tiers: ['canadian_sovereign', 'managed_canadian_cloud', 'global'],
      pricing: { input_per_mtok: '1.00', output_per_mtok: '2.50' },
    });
  });
});

describe('reservationAmount', () => {
  const sonnet = catalog().byId.get('anthropic/claude-sonnet-4.5')!;

  it('reserves the size-bounded input at the dearest input price plus max_tokens of output', () => {
    // 3000 bytes → ≤ 1000 tokens at 5.175 (cache write) + 100 tokens at 20.70, per million, rounded up.
    expect(reservationAmount(sonnet, 3000, 100)).toBe(5_175 + 2_070);
  });

  it('uses the model limit when max_tokens is absent or larger', () => {
    const full = reservationAmount(sonnet, 3000, undefined);
    expect(full).toBe(5_175 + 1_324_800);
    expect(reservationAmount(sonnet, 3000, 1_000_000)).toBe(full);
  });
});

describe('GET /api/billing/models', () => {
  it('returns the public catalog, cacheable, with CORS, the request id and an ETag', async () => {
    const res = await get();
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toEqual(publicCatalog(catalog()));
    expect(res.headers).toMatchObject({
      'content-type': 'application/json',
      'cache-control': 'public, max-age=300',
      'access-control-allow-origin': '*',
      'x-request-id': 'req-1',
      'x-ni-request-id': 'req-1',
    });
    expect(String(res.headers!['access-control-expose-headers']).split(', ')).toEqual(expect.arrayContaining(['x-request-id', 'x-ni-request-id', 'etag']));
    expect(res.headers!.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect((await get()).headers!.etag).toBe(res.headers!.etag);
  });

  it('answers 304 with no body to a matching If-None-Match, whatever its header case or form', async () => {
    const etag = String((await get()).headers!.etag);
    const variants: Record<string, string>[] = [{ 'If-None-Match': etag }, { 'if-none-match': `W/${etag}` }, { 'if-none-match': `"other", ${etag}` }, { 'if-none-match': '*' }];
    for (const headers of variants) {
      const res = await get(headers);
      expect(res.statusCode).toBe(304);
      expect(res.body).toBe('');
      expect(res.headers!.etag).toBe(etag);
    }
    expect((await get({ 'if-none-match': '"stale"' })).statusCode).toBe(200);
  });
});
