import OpenAI from 'openai';
import { catalog } from '../../lambdas/catalog';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * Residency across providers, asserted on what each stand-in itself received: a Canadian-tier key, asking for
 * every model of the built-in catalog, reaches only Canadian routes — Bedrock in ca-central-1 and Vertex AI in
 * Montréal — and never Anthropic's API nor Vertex AI's global endpoint. Global-tier calls to Gemini stay in
 * Montréal too (no other Vertex route exists), and Claude keeps Bedrock first.
 */

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
// The last requests' usage and custody records are written before the store closes.
afterAll(async () => {
  await gw.flush();
  await gw.close();
});
beforeEach(() => {
  gw.standIn!.reset();
  gw.vertexStandIn!.reset();
  gw.anthropicStandIn!.reset();
});

async function askEveryModel(openai: OpenAI): Promise<Map<string, string>> {
  const outcomes = new Map<string, string>();
  for (const id of catalog().byId.keys()) {
    try {
      const stream = await openai.chat.completions.create({ model: id, stream: true, messages: [{ role: 'user', content: 'Bonjour' }] });
      for await (const chunk of stream) void chunk;
      outcomes.set(id, 'answered');
    } catch (err) {
      outcomes.set(id, (err as InstanceType<typeof OpenAI.APIError>).code ?? String(err));
    }
  }
  return outcomes;
}

test('a managed_canadian_cloud key reaches only ca-central-1 Bedrock and Montréal Vertex AI', async () => {
  const { openai } = await gw.client({ tier: 'managed_canadian_cloud' });
  const outcomes = await askEveryModel(openai);
  expect(outcomes.get('vertex_ai/gemini-2-5-flash')).toBe('answered');
  expect(outcomes.get('vertex_ai/gemini-2-5-pro')).toBe('answered');
  expect(outcomes.get('meta/llama-3-70b')).toBe('answered');
  for (const id of ['anthropic/claude-sonnet-4.5', 'anthropic/claude-haiku-4.5', 'anthropic/claude-opus-4.6']) expect(outcomes.get(id)).toBe('model_not_available_in_tier');

  expect(gw.anthropicStandIn!.requests).toEqual([]);
  expect(gw.vertexStandIn!.requests.map((r) => `${r.location}/${r.model}`).sort()).toEqual(['northamerica-northeast1/gemini-2.5-flash', 'northamerica-northeast1/gemini-2.5-pro']);
  const canadianBedrock = new Set(catalog().models.flatMap((m) => m.served.filter((r) => r.provider === 'bedrock' && r.jurisdiction === 'CA').map((r) => r.upstream_id)));
  expect(gw.standIn!.requests.length).toBeGreaterThan(0);
  for (const r of gw.standIn!.requests) expect(canadianBedrock.has(r.modelId)).toBe(true);
});

test('under global, Gemini is still served from Montréal (never the global location) and Claude from Bedrock first', async () => {
  const { openai } = await gw.client({ tier: 'global' });
  const outcomes = await askEveryModel(openai);
  for (const [id, outcome] of outcomes) if (!id.startsWith('openai/')) expect(outcome).toBe('answered');
  expect(gw.vertexStandIn!.requests).toHaveLength(2);
  for (const r of gw.vertexStandIn!.requests) expect(r.location).toBe('northamerica-northeast1');
  expect(gw.anthropicStandIn!.requests).toEqual([]);
  expect(gw.standIn!.requests.map((r) => r.modelId)).toEqual(expect.arrayContaining(['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'us.anthropic.claude-opus-4-6-v1']));
});
