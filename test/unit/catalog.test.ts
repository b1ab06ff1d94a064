import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import builtIn from '../../lambdas/catalog.json';
import { assertCapable, buildCatalog, CatalogError, configureCatalog, modelsForTier, resolveModel, type Catalog } from '../../lambdas/core/catalog';
import { catalog } from '../../lambdas/catalog';
import { GatewayError } from '../../lambdas/core/errors';
import { TIERS, tierAllows, type Tier } from '../../lambdas/core/tiers';
import { missingConfiguration, type ProviderSettings } from '../../lambdas/providers/registry';
import { PROVIDER_NAMES } from '../../lambdas/providers/names';
import { reloadConfig } from '../../lambdas/config';

const SERVED: ReadonlySet<string> = new Set(PROVIDER_NAMES);

const c = catalog();

describe('catalog', () => {
  test('serves every seed model: Bedrock, OpenAI-wire, Vertex AI and the sovereign host', () => {
    const ids = c.models.map((m) => m.id);
    for (const id of [
      'anthropic/claude-sonnet-4.5', 'anthropic/claude-opus-4.6', 'anthropic/claude-haiku-4.5', 'meta/llama-3-70b', 'meta/llama-3-8b',
      'mistral/mistral-large', 'openai/gpt-4o', 'openai/gpt-4.1', 'meta/llama-3.3-70b', 'vertex_ai/gemini-2-5-flash', 'vertex_ai/gemini-2-5-pro',
    ]) {
      expect(ids).toContain(id);
    }
  });

  test("Azure OpenAI's facts: gpt-4o through the Canada East deployment first (CA), gpt-4.1 only direct (US); the self-hosted model is Canadian-controlled", () => {
    expect(c.byId.get('openai/gpt-4o')!.served.map((r) => [r.provider, r.region, r.jurisdiction])).toEqual([['azure_openai', 'canadaeast', 'CA'], ['openai', 'us', 'US']]);
    expect(c.byId.get('openai/gpt-4o')!.tiers).toEqual(['managed_canadian_cloud', 'global']);
    expect(c.byId.get('openai/gpt-4.1')!.tiers).toEqual(['global']);
    expect(c.byId.get('meta/llama-3.3-70b')!.tiers).toEqual([...TIERS]);
    expect(c.byId.get('meta/llama-3.3-70b')!.served[0]).toMatchObject({ provider: 'openai_compatible', endpoint: 'sovereign-vllm', canadian_controlled: true });
  });

  test("today's facts: Claude 4.5 through Bedrock's us./global. profiles, then direct Anthropic; Llama 3 in ca-central-1; Gemini in Montréal", () => {
    for (const r of c.byId.get('anthropic/claude-sonnet-4.5')!.served.filter((x) => x.provider === 'bedrock')) expect(r.upstream_id).toMatch(/^(us|global)\./);
    expect(c.byId.get('anthropic/claude-sonnet-4.5')!.jurisdictions).toEqual(['US', 'GLOBAL']);
    // Anthropic's API runs inference in any geography by default; only Opus 4.6 and later take inference_geo "us".
    for (const id of ['anthropic/claude-sonnet-4.5', 'anthropic/claude-haiku-4.5', 'anthropic/claude-opus-4.6']) {
      const routes = c.byId.get(id)!.served;
      expect(routes.map((r) => r.provider)).toEqual(['bedrock', 'bedrock', 'anthropic']);
      expect(routes[2]).toMatchObject(id.endsWith('opus-4.6') ? { region: 'us', jurisdiction: 'US' } : { region: 'global', jurisdiction: 'GLOBAL' });
    }
    // Only the regional endpoint keeps Gemini's ML processing in Montréal; the global endpoint promises no place.
    for (const id of ['vertex_ai/gemini-2-5-flash', 'vertex_ai/gemini-2-5-pro']) {
      expect(c.byId.get(id)!.served).toEqual([expect.objectContaining({ provider: 'vertex_ai', region: 'northamerica-northeast1', jurisdiction: 'CA' })]);
    }
    expect(c.byId.get('meta/llama-3-70b')!.served).toEqual([expect.objectContaining({ region: 'ca-central-1', jurisdiction: 'CA' })]);
  });

  test('tiers are derived from routes, never typed', () => {
    expect(c.byId.get('meta/llama-3-8b')!.tiers).toEqual(['managed_canadian_cloud', 'global']);
    expect(c.byId.get('anthropic/claude-haiku-4.5')!.tiers).toEqual(['global']);
  });

  test.each(c.models.flatMap((m) => TIERS.map((t) => [m.id, t] as const)))('%s under %s', (id, tier) => {
    const model = c.byId.get(id)!;
    if (model.tiers.includes(tier)) {
      const { routes } = resolveModel(c, id, tier);
      expect(routes.length).toBeGreaterThan(0);
      for (const r of routes) {
        expect(tierAllows(tier, r)).toBe(true);
        // Retries and fallbacks stay in the jurisdiction of the first choice.
        expect(r.jurisdiction).toBe(routes[0].jurisdiction);
      }
    } else {
      let err: GatewayError | undefined;
      try {
        resolveModel(c, id, tier);
      } catch (e) {
        err = e as GatewayError;
      }
      expect(err?.code).toBe('model_not_available_in_tier');
      expect(err?.message).toContain(tier);
      expect(err?.extra.available_models).toEqual(c.models.filter((m) => m.tiers.includes(tier)).map((m) => m.id));
    }
  });

  test('an unknown model is not deployed, with the full list', () => {
    expect(() => resolveModel(c, 'acme/nope', 'global')).toThrow(/^Model 'acme\/nope' is not deployed/);
  });

  test('tools or images a model does not take: 400 before anything goes upstream, naming the models that do', () => {
    const error = (id: string, needs: { tools: boolean; images: boolean }) => {
      try {
        assertCapable(c, c.byId.get(id)!, 'global', needs);
      } catch (e) {
        return e as GatewayError;
      }
      return null;
    };
    const tools = error('meta/llama-3-70b', { tools: true, images: false })!;
    expect(tools).toMatchObject({ status: 400, code: 'model_does_not_support_tools', param: 'tools' });
    expect(tools.message).toMatch(/^Model 'meta\/llama-3-70b' does not support tools\. Models in privacy tier 'global' that do: .*anthropic\/claude-sonnet-4\.5/);
    expect(tools.extra.available_models).toEqual(c.models.filter((m) => m.capabilities.tools).map((m) => m.id));
    expect(tools.extra.available_models).not.toContain('meta/llama-3-70b');
    const images = error('mistral/mistral-large', { tools: false, images: true })!;
    expect(images).toMatchObject({ status: 400, code: 'model_does_not_support_images', param: 'messages' });
    expect(error('meta/llama-3-70b', { tools: false, images: false })).toBeNull();
    expect(error('anthropic/claude-sonnet-4.5', { tools: true, images: true })).toBeNull();
  });

  test('a broken entry stops start-up with a message naming it', () => {
    const broken = structuredClone(builtIn) as { models: { id: string; routes: { jurisdiction: string }[] }[] };
    broken.models[3].routes[0].jurisdiction = 'MARS';
    expect(() => buildCatalog(broken, SERVED)).toThrow(CatalogError);
    expect(() => buildCatalog(broken, SERVED)).toThrow(/model "meta\/llama-3-70b"/);
    const dup = structuredClone(builtIn) as { models: unknown[] };
    dup.models.push(dup.models[0]);
    expect(() => buildCatalog(dup, SERVED)).toThrow(/appears twice/);
    const undeclared = structuredClone(builtIn) as { models: { id: string; routes: { endpoint?: string }[] }[] };
    undeclared.models.find((m) => m.id === 'meta/llama-3.3-70b')!.routes[0].endpoint = 'nowhere';
    expect(() => buildCatalog(undeclared, SERVED)).toThrow(/model "meta\/llama-3.3-70b": route endpoint "nowhere" is not declared/);
  });

  test('a broken NI_CATALOG_FILE fails the gateway function at init, naming the entry', () => {
    const broken = structuredClone(builtIn) as { models: { id: string; max_output_tokens: number }[] };
    broken.models[3].max_output_tokens = -1;
    const file = join(mkdtempSync(join(tmpdir(), 'ni-cat-')), 'catalog.json');
    writeFileSync(file, JSON.stringify(broken));
    jest.isolateModules(() => {
      process.env.NI_CATALOG_FILE = file;
      reloadConfig();
      try {
        require('../../local/awslambda'); // the streaming globals the handler module uses
        expect(() => require('../../lambdas/handlers/gateway')).toThrow(/model "meta\/llama-3-70b": models\.3\.max_output_tokens/);
      } finally {
        delete process.env.NI_CATALOG_FILE;
        reloadConfig();
      }
    });
  });

  test('a route whose label contradicts its inference profile or region stops start-up, naming the entry', () => {
    const lying = (edit: (m: { id: string; routes: { region: string; upstream_id: string; jurisdiction: string; canadian_controlled?: boolean }[] }[]) => void) => {
      const data = structuredClone(builtIn) as unknown as { models: { id: string; routes: { region: string; upstream_id: string; jurisdiction: string; canadian_controlled?: boolean }[] }[] };
      edit(data.models);
      const file = join(mkdtempSync(join(tmpdir(), 'ni-cat-')), 'catalog.json');
      writeFileSync(file, JSON.stringify(data));
      return file;
    };
    const cases: [string, RegExp][] = [
      // The example: a US inference profile labelled Canadian would be served to Canadian tiers.
      [lying((ms) => Object.assign(ms.find((m) => m.id === 'anthropic/claude-haiku-4.5')!.routes[0], { region: 'ca-central-1', jurisdiction: 'CA' })),
        /model "anthropic\/claude-haiku-4.5" route bedrock ca-central-1 us\.anthropic\.claude-haiku-4-5-20251001-v1:0: prefix "us\." processes data in US, but the catalog says CA/],
      [lying((ms) => Object.assign(ms.find((m) => m.id === 'meta/llama-3-70b')!.routes[0], { region: 'us-east-1' })),
        /model "meta\/llama-3-70b" route bedrock us-east-1 .*: a plain model id in us-east-1 processes data in US, but the catalog says CA/],
      [lying((ms) => Object.assign(ms.find((m) => m.id === 'meta/llama-3-8b')!.routes[0], { canadian_controlled: true })),
        /model "meta\/llama-3-8b" .*canadian_controlled/],
    ];
    for (const [file, message] of cases) {
      jest.isolateModules(() => {
        process.env.NI_CATALOG_FILE = file;
        reloadConfig();
        try {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const fresh = require('../../lambdas/catalog') as typeof import('../../lambdas/catalog');
          expect(() => fresh.catalog()).toThrow(message);
        } finally {
          delete process.env.NI_CATALOG_FILE;
          reloadConfig();
        }
      });
    }
  });

  test('NI_CATALOG_FILE replaces the built-in catalog', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ni-cat-'));
    const file = join(dir, 'catalog.json');
    writeFileSync(file, JSON.stringify({ ...builtIn, models: builtIn.models.filter((m) => m.id === 'meta/llama-3-8b') }));
    jest.isolateModules(() => {
      process.env.NI_CATALOG_FILE = file;
      reloadConfig();
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const fresh = require('../../lambdas/catalog') as typeof import('../../lambdas/catalog');
      expect(fresh.catalog().models.map((m) => m.id)).toEqual(['meta/llama-3-8b']);
      delete process.env.NI_CATALOG_FILE;
      reloadConfig();
    });
  });
});

describe('the catalog as a deployment configures it (configureCatalog, missingConfiguration)', () => {
  const settings = (over: Partial<ProviderSettings> = {}): ProviderSettings => ({
    endpoints: { azure_openai: 'https://ni.openai.azure.com' },
    secrets: { get: async () => undefined, has: (name) => ['azure_openai', 'openai', 'anthropic', 'vertex_ai', 'openai_compatible:sovereign-vllm'].includes(name) },
    openaiCompatible: c.endpoints,
    ...over,
  });
  const refusal = (cat: Catalog, model: string, tier: Tier) => {
    try {
      resolveModel(cat, model, tier);
    } catch (err) {
      return err as GatewayError;
    }
    throw new Error(`${model} resolved under ${tier}`);
  };

  test('the built-in sovereign endpoint has no base URL: canadian_sovereign serves nothing until one is given', () => {
    expect(c.endpoints['sovereign-vllm'].base_url).toBeUndefined();
    const without = configureCatalog(c, missingConfiguration(settings()));
    expect(modelsForTier(without, 'canadian_sovereign')).toEqual([]);
    const err = refusal(without, 'meta/llama-3.3-70b', 'canadian_sovereign');
    expect(err.code).toBe('model_not_available_in_tier');
    expect(err.message).toContain('no base URL for the OpenAI-compatible endpoint sovereign-vllm (NI_OPENAI_COMPATIBLE_BASE_URLS');
    const given = configureCatalog(c, missingConfiguration(settings({ openaiCompatible: { 'sovereign-vllm': { base_url: 'https://gpu.example.ca/v1', secret: true } } })));
    expect(modelsForTier(given, 'canadian_sovereign').map((m) => m.id)).toEqual(['meta/llama-3.3-70b']);
  });

  test('a credential not configured takes its provider out; Vertex AI by federation needs a project, not a key', () => {
    const noKeys = settings({ secrets: { get: async () => undefined, has: () => false } });
    const cat = configureCatalog(c, missingConfiguration(noKeys));
    expect(cat.models.map((m) => m.id).sort()).toEqual(['anthropic/claude-haiku-4.5', 'anthropic/claude-opus-4.6', 'anthropic/claude-sonnet-4.5', 'meta/llama-3-70b', 'meta/llama-3-8b', 'mistral/mistral-large']);
    expect(refusal(cat, 'openai/gpt-4.1', 'global').message).toContain('no openai credential');
    // Claude keeps its Bedrock routes: only the direct ones go.
    expect(cat.byId.get('anthropic/claude-opus-4.6')!.served.map((r) => r.provider)).toEqual(['bedrock', 'bedrock']);
    const wi = { audience: '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x', stsEndpoint: 'https://sts', iamCredentialsEndpoint: 'https://iam', awsRegion: 'ca-central-1', awsCredentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }) };
    expect(refusal(configureCatalog(c, missingConfiguration({ ...noKeys, vertexWorkloadIdentity: wi })), 'vertex_ai/gemini-2-5-flash', 'managed_canadian_cloud').message).toContain('NI_VERTEX_PROJECT_ID');
    expect(configureCatalog(c, missingConfiguration({ ...noKeys, vertexWorkloadIdentity: wi, vertexProject: 'p' })).byId.get('vertex_ai/gemini-2-5-flash')!.tiers).toEqual(['managed_canadian_cloud', 'global']);
  });
});
