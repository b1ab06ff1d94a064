import type { Route } from '../../lambdas/core/catalog';
import { ROUTE_CHECKS } from '../../lambdas/providers/names';
import { UpstreamError } from '../../lambdas/providers/provider';
import { createVertexProvider, regionalEndpoint } from '../../lambdas/providers/vertex-ai';

const request = { model: 'vertex_ai/gemini-2-5-flash', stream: true, includeUsage: false, system: [], messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Hi' }] }], tools: [] };
const route = (region: string, jurisdiction: Route['jurisdiction']): Route => ({ provider: 'vertex_ai', region, upstream_id: 'gemini-2.5-flash', jurisdiction, canadian_controlled: false, verified: false });

test('a route is served by its regional endpoint; only a route named global reaches the global one', () => {
  expect(regionalEndpoint('northamerica-northeast1')).toBe('https://northamerica-northeast1-aiplatform.googleapis.com');
  expect(regionalEndpoint('global')).toBe('https://aiplatform.googleapis.com');
});

test('the catalog refuses a Vertex AI route in the global location labelled anything but GLOBAL, and Canadian labels outside Canada', () => {
  const check = ROUTE_CHECKS.vertex_ai!;
  expect(check(route('global', 'CA'))).toMatch(/global endpoint promises no location/);
  expect(check(route('global', 'GLOBAL'))).toBeNull();
  expect(check(route('northamerica-northeast1', 'CA'))).toBeNull();
  expect(check(route('us-central1', 'CA'))).toMatch(/not in Canada/);
  expect(check({ ...route('northamerica-northeast1', 'CA'), canadian_controlled: true })).toMatch(/not Canadian-controlled/);
});

test('without a credential a served route is not enabled, after asking for it', async () => {
  const asked: string[] = [];
  const provider = createVertexProvider({ secrets: { get: async (p) => (asked.push(p), undefined), has: () => false } });
  await expect(provider.stream(route('northamerica-northeast1', 'CA'), request, 10)).rejects.toEqual(new UpstreamError('not_enabled'));
  expect(asked).toEqual(['vertex_ai']);
});

test('custody names the Vertex AI location and model', () => {
  expect(createVertexProvider({ secrets: { get: async () => undefined, has: () => false } }).custodyHops(route('northamerica-northeast1', 'CA'))).toEqual(['vertex-ai@northamerica-northeast1#gemini-2.5-flash']);
});
