import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import builtIn from '../../lambdas/catalog.json';
import { parseCustodyPath } from '../../lambdas/core/custody';
import { ANSWER_TO_UPSTREAM_STATUS, collectChunks as collect, finishReasonOf, refusal, streamedText, streamedToolCalls, streamToolResults } from '../support/chat-streams';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * Claude over Anthropic's own API end to end, with a catalog in which Bedrock is unavailable for Claude (its
 * Bedrock routes removed, so the direct-Anthropic routes are the ones taken): the official openai client → the
 * local runtime → the gateway's Anthropic client → the Anthropic stand-in, speaking the Messages API's SSE events.
 */

let gw: TestGateway;
let catalogDir: string;
const SONNET = 'anthropic/claude-sonnet-4.5';
const HAIKU = 'anthropic/claude-haiku-4.5';
const OPUS = 'anthropic/claude-opus-4.6';

beforeAll(async () => {
  catalogDir = mkdtempSync(join(tmpdir(), 'ni-catalog-'));
  const withoutBedrockClaude = {
    ...builtIn,
    models: builtIn.models.map((m) => (m.id.startsWith('anthropic/') ? { ...m, routes: m.routes.filter((r) => r.provider !== 'bedrock') } : m)),
  };
  writeFileSync(join(catalogDir, 'catalog.json'), JSON.stringify(withoutBedrockClaude));
  process.env.NI_CATALOG_FILE = join(catalogDir, 'catalog.json');
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw.flush(); // the last requests' usage and custody records are written before the store closes
  await gw.close();
  delete process.env.NI_CATALOG_FILE;
  rmSync(catalogDir, { recursive: true, force: true });
});
beforeEach(() => gw.anthropicStandIn!.reset());

const requests = () => gw.anthropicStandIn!.requests;
const lastSent = () => requests()[requests().length - 1];

const WEATHER: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, additionalProperties: false } },
};
const TIME: OpenAI.Chat.Completions.ChatCompletionTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } };

describe.each([
  [SONNET, 'claude-sonnet-4-5-20250929', undefined],
  [HAIKU, 'claude-haiku-4-5-20251001', undefined],
  [OPUS, 'claude-opus-4-6', 'us'],
] as const)('%s under global', (model, upstream, geo) => {
  test('a streamed parallel tool-call round trip over the Messages API', async () => {
    const { openai } = await gw.client({ tier: 'global' });
    const question = 'ni-standin:tool_calls=2 Weather and time?';
    const { data: stream, response } = await openai.chat.completions
      .create({ model, stream: true, stream_options: { include_usage: true }, tools: [WEATHER, TIME], messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: question }] })
      .withResponse();
    expect(parseCustodyPath(response.headers.get('x-ni-custody-path')!).map((h) => `${h.party}#${h.upstream_id}`)).toEqual(['ni-gateway#null', `anthropic-standin#${upstream}`]);
    const chunks = await collect(stream);
    const calls = streamedToolCalls(chunks);
    expect([...calls.values()].map((c) => c.name)).toEqual(['get_weather', 'get_time']);
    for (const c of calls.values()) expect(JSON.parse(c.args)).toEqual({ text: question });
    expect(finishReasonOf(chunks)).toBe('tool_calls');
    const usage = chunks[chunks.length - 1].usage!;
    expect(usage.prompt_tokens).toBe(Math.ceil(('Be brief.' + question).length / 4));

    const first = lastSent();
    expect(first.apiKey).toBe(gw.anthropicStandIn!.apiKey);
    expect(first.version).toBe('2023-06-01');
    expect(first.body).toMatchObject({ model: upstream, stream: true, system: [{ type: 'text', text: 'Be brief.' }] });
    expect(first.body.inference_geo).toBe(geo);
    expect(first.body.tools[0]).toEqual({ name: 'get_weather', description: 'Weather for a city', input_schema: WEATHER.function.parameters });

    const ids = [...calls.values()].map((c) => c.id);
    const answer = await streamToolResults(openai, { model, tools: [WEATHER, TIME], question }, calls, [[ids[0], '-5C'], [ids[1], 'noon']]);
    expect(streamedText(answer)).toBe('Tool results: -5C | noon');
    expect(lastSent().body.messages[2]).toEqual({
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: ids[0], content: [{ type: 'text', text: '-5C' }] }, { type: 'tool_result', tool_use_id: ids[1], content: [{ type: 'text', text: 'noon' }] }],
    });
  });
});

test('cache reads and writes count into prompt_tokens and cached_tokens', async () => {
  const { openai } = await gw.client({ tier: 'global' });
  const prompt = 'ni-standin:cache_read=100 ni-standin:cache_write=20';
  const data = await openai.chat.completions.create({ model: SONNET, max_tokens: 50, messages: [{ role: 'user', content: prompt }] });
  expect(data.usage).toMatchObject({ prompt_tokens: Math.ceil(prompt.length / 4) + 120, prompt_tokens_details: { cached_tokens: 100 } });
  expect(data.choices[0].message.content).toBe('Hello from the Anthropic stand-in.');
  expect(lastSent().body.max_tokens).toBe(50);
});

describe('errors are classified as for every provider', () => {
  test.each([400, 401, 429, 529])('Anthropic %i', async (status) => {
    const { openai } = await gw.client({ tier: 'global' });
    const answer = await refusal(openai, HAIKU, `ni-standin:status=${status}`);
    expect(answer).toMatchObject(ANSWER_TO_UPSTREAM_STATUS[status]);
    if (status === 400) expect(answer.message).toContain('scripted status 400'); // Anthropic's own words
  });

  test('an error event mid-stream ends the stream with an error', async () => {
    const { openai } = await gw.client({ tier: 'global' });
    const stream = await openai.chat.completions.create({ model: HAIKU, stream: true, messages: [{ role: 'user', content: 'ni-standin:fail_mid_stream' }] });
    await expect(collect(stream)).rejects.toThrow(/overloaded_error during the response/);
  });
});

test.each(['managed_canadian_cloud', 'canadian_sovereign'] as const)('under %s Claude is refused and nothing reaches Anthropic', async (tier) => {
  const { openai } = await gw.client({ tier });
  for (const model of [SONNET, HAIKU, OPUS]) expect((await refusal(openai, model, 'Hi')).code).toBe('model_not_available_in_tier');
  expect(requests()).toEqual([]);
});
