import OpenAI from 'openai';
import type { Tier } from '../../lambdas/core/tiers';
import { TIERS } from '../../lambdas/core/tiers';
import { parseCustodyPath } from '../../lambdas/core/custody';
import type { OpenAIStandIn } from '../../local/openai-standin';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * The OpenAI-wire providers end to end: the official openai client → the gateway → each provider's stand-in
 * speaking its real wire format (Azure's quirks included) → a tool result → the final answer, under every tier
 * the model's routes allow, and refused under the others. What reached each upstream is read from the
 * stand-ins' own request logs.
 */

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(() => gw.close());

type Chunk = OpenAI.Chat.Completions.ChatCompletionChunk;
const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'lookup_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
];

async function collect(stream: AsyncIterable<Chunk>) {
  const chunks: Chunk[] = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

/** The streamed tool-call round trip; returns what the client saw and the headers of both turns. */
async function roundTrip(openai: OpenAI, model: string) {
  const question = { role: 'user' as const, content: 'What is the weather in Montreal?' };
  const first = await openai.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, tools: TOOLS, messages: [question] }).withResponse();
  const chunks = await collect(first.data);
  const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  const id = calls.find((c) => c.id)!.id!;
  const name = calls.find((c) => c.function?.name)!.function!.name!;
  const args = calls.map((c) => c.function?.arguments ?? '').join('');
  expect(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0].finish_reason).toBe('tool_calls');
  expect(chunks[chunks.length - 1].usage!.prompt_tokens).toBeGreaterThan(0);

  const second = await openai.chat.completions.create({
    model, stream: true, tools: TOOLS,
    messages: [question, { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name, arguments: args } }] }, { role: 'tool', tool_call_id: id, content: '-3 °C, snow' }],
  }).withResponse();
  const final = await collect(second.data);
  return { name, args, answer: final.map((c) => c.choices[0]?.delta?.content ?? '').join(''), finish: final.find((c) => c.choices[0]?.finish_reason)!.choices[0].finish_reason, headers: [first.response.headers, second.response.headers] };
}

const CASES: { model: string; standIn: () => OpenAIStandIn; upstream: string; tiers: Tier[] }[] = [
  { model: 'openai/gpt-4o', standIn: () => gw.openaiStandIns.azure_openai!, upstream: 'gpt-4o', tiers: ['managed_canadian_cloud', 'global'] },
  { model: 'openai/gpt-4.1', standIn: () => gw.openaiStandIns.openai!, upstream: 'gpt-4.1', tiers: ['global'] },
  { model: 'meta/llama-3.3-70b', standIn: () => gw.openaiStandIns.openai_compatible!, upstream: 'meta-llama/Llama-3.3-70B-Instruct', tiers: [...TIERS] },
];

describe.each(CASES)('$model', ({ model, standIn, upstream, tiers }) => {
  test.each(tiers)('a streamed tool-call round trip under %s', async (tier) => {
    const { openai } = await gw.client({ tier });
    const before = standIn().requests.length;
    const r = await roundTrip(openai, model);
    expect(r.name).toBe('lookup_weather');
    expect(JSON.parse(r.args)).toEqual({ text: 'What is the weather in Montreal?' });
    expect(r.answer).toBe('Tool results: -3 °C, snow');
    expect(r.finish).toBe('stop');
    for (const h of r.headers) {
      expect(h.get('x-ni-resolved-jurisdiction')).toBe('SIMULATED');
      expect(parseCustodyPath(h.get('x-ni-custody-path')!)[1]).toMatchObject({ place: 'loopback', upstream_id: upstream });
    }
    // Both turns reached this provider's stand-in, authenticated, streamed with usage, in its wire shape.
    const sent = standIn().requests.slice(before);
    expect(sent).toHaveLength(2);
    for (const s of sent) {
      expect(s).toMatchObject({ model: upstream, authenticated: true, outcome: 'answered', body: { stream: true, stream_options: { include_usage: true } } });
    }
    expect(sent[1].body.messages.slice(-2)).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: expect.any(String), type: 'function', function: { name: 'lookup_weather', arguments: r.args } }] },
      { role: 'tool', tool_call_id: expect.any(String), content: '-3 °C, snow' },
    ]);
  });

  const refused = TIERS.filter((t) => !tiers.includes(t));
  if (refused.length) {
    test.each(refused)('refused under %s with model_not_available_in_tier, nothing sent upstream', async (tier) => {
      const { openai } = await gw.client({ tier });
      const counts = Object.values(gw.openaiStandIns).map((s) => s!.requests.length);
      const err = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('model_not_available_in_tier');
      expect(Object.values(gw.openaiStandIns).map((s) => s!.requests.length)).toEqual(counts);
    });
  }
});

test("Azure's own URL shape, api-version and api-key; OpenAI's Bearer and max_completion_tokens", async () => {
  const { openai } = await gw.client({ tier: 'global' });
  await openai.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 77 });
  await openai.chat.completions.create({ model: 'openai/gpt-4.1', messages: [{ role: 'user', content: 'hi' }], max_tokens: 77 });
  const azure = gw.openaiStandIns.azure_openai!.requests.at(-1)!;
  expect(azure.path).toBe('/openai/deployments/gpt-4o/chat/completions');
  expect(azure.body.max_tokens).toBe(77);
  const direct = gw.openaiStandIns.openai!.requests.at(-1)!;
  expect(direct.path).toBe('/v1/chat/completions');
  expect(direct.body).toMatchObject({ model: 'gpt-4.1', max_completion_tokens: 77 });
});

test('a default-tier key lists gpt-4o, a model with tools, images and a 128k context', async () => {
  const { openai } = await gw.client();
  const ids = (await openai.models.list()).data.map((m) => m.id);
  expect(ids).toContain('openai/gpt-4o');
  expect(ids).not.toContain('openai/gpt-4.1');
  const catalog = (await (await fetch(`${gw.url}/api/billing/models`)).json()) as { models: { model_id: string; context_window: number; capabilities: { tools: boolean; vision: boolean } }[] };
  const capable = catalog.models.filter((m) => ids.includes(m.model_id) && m.capabilities.tools && m.capabilities.vision && m.context_window >= 128_000).map((m) => m.model_id);
  expect(capable).toContain('openai/gpt-4o');
});

test('an image reaches Azure as a data URI; non-streamed answers come back whole', async () => {
  const { openai } = await gw.client();
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex').toString('base64');
  const done = await openai.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }] });
  expect(done.choices[0].message.content).toBe('Hello from the azure stand-in.');
  expect(done.usage!.completion_tokens).toBeGreaterThan(0);
  expect(gw.openaiStandIns.azure_openai!.requests.at(-1)!.body.messages[0].content[1]).toEqual({ type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } });
});

describe("Azure's content filter", () => {
  test('a filtered prompt is a 400 with code content_filter, as OpenAI clients expect', async () => {
    const { openai } = await gw.client();
    gw.openaiStandIns.azure_openai!.inject('filter_prompt');
    const err = await openai.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('content_filter');
  });

  test('a filtered completion ends with finish_reason content_filter', async () => {
    const { openai } = await gw.client();
    gw.openaiStandIns.azure_openai!.inject('filter_completion');
    const chunks = await collect(await openai.chat.completions.create({ model: 'openai/gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }));
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Hello ');
    expect(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0].finish_reason).toBe('content_filter');
  });
});
