import builtIn from '../../lambdas/catalog.json';
import { catalog } from '../../lambdas/catalog';
import { buildCatalog, FALLBACK_DEFAULT_MAX_TOKENS } from '../../lambdas/core/catalog';
import { PROVIDER_NAMES } from '../../lambdas/providers/names';

const SERVED: ReadonlySet<string> = new Set(PROVIDER_NAMES);
import { outputBudget } from '../../lambdas/core/output-budget';

const sonnet = { max_output_tokens: 64_000, default_max_tokens: 16_384 };

describe('outputBudget', () => {
  test("the request's max_tokens wins, capped by the model's limit", () => {
    expect(outputBudget(sonnet, 100, 512)).toBe(100);
    expect(outputBudget(sonnet, 200_000, 512)).toBe(64_000);
  });

  test("without one: the key's default, else the model's, both capped by the limit", () => {
    expect(outputBudget(sonnet, undefined, 512)).toBe(512);
    expect(outputBudget(sonnet, undefined, 100_000)).toBe(64_000);
    expect(outputBudget(sonnet, undefined)).toBe(16_384);
  });
});

describe('catalog default_max_tokens', () => {
  test('every model has one within its limit; providers whose limit is low keep their whole limit', () => {
    for (const m of catalog().byId.values()) {
      expect(m.default_max_tokens).toBeGreaterThan(0);
      expect(m.default_max_tokens).toBeLessThanOrEqual(m.max_output_tokens);
    }
    expect(catalog().byId.get('anthropic/claude-opus-4.6')!.default_max_tokens).toBeLessThan(128_000);
    expect(catalog().byId.get('meta/llama-3-8b')!.default_max_tokens).toBe(2048);
  });

  test("Mistral Large 24.02's output limit is AWS's model card's 4K", () => {
    expect(catalog().byId.get('mistral/mistral-large')!.max_output_tokens).toBe(4096);
  });

  const withSonnet = (patch: object) => ({ ...builtIn, models: [{ ...builtIn.models[0], ...patch }] });

  test('a default above the limit stops the catalog, naming the model', () => {
    expect(() => buildCatalog(withSonnet({ default_max_tokens: 64_001 }), SERVED)).toThrow(/anthropic\/claude-sonnet-4\.5.*default_max_tokens/);
  });

  test('an entry without one gets the fallback, within its limit', () => {
    const { default_max_tokens: _, ...rest } = builtIn.models[0];
    expect(buildCatalog({ ...builtIn, models: [rest] }, SERVED).byId.get(rest.id)!.default_max_tokens).toBe(FALLBACK_DEFAULT_MAX_TOKENS);
    expect(buildCatalog({ ...builtIn, models: [{ ...rest, max_output_tokens: 1000 }] }, SERVED).byId.get(rest.id)!.default_max_tokens).toBe(1000);
  });
});
