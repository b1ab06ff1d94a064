import OpenAI from 'openai';
import { parseCustodyPath } from '../../lambdas/core/custody';
import { ANSWER_TO_UPSTREAM_STATUS, collectChunks as collect, finishReasonOf, refusal, streamedText, streamedToolCalls, streamToolResults } from '../support/chat-streams';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * Gemini on Vertex AI end to end: the official openai client → the local runtime → the gateway's Vertex client
 * (service-account JWT exchanged for an access token, streamGenerateContent over SSE) → the Vertex stand-in,
 * which verifies the JWT and refuses what Gemini refuses. Residency is asserted on the stand-in's own log.
 */

let gw: TestGateway;
const FLASH = 'vertex_ai/gemini-2-5-flash';
const PRO = 'vertex_ai/gemini-2-5-pro';
const MONTREAL = 'northamerica-northeast1';

beforeAll(async () => {
  gw = await startTestGateway();
});
// The last requests' usage and custody records are written before the store closes.
afterAll(async () => {
  await gw.flush();
  await gw.close();
});
beforeEach(() => gw.vertexStandIn!.reset());

const requests = () => gw.vertexStandIn!.requests;
const lastSent = () => requests()[requests().length - 1];

const WEATHER: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    // What OpenAI clients send and Gemini rejects: the stand-in refuses these keywords as Gemini does.
    parameters: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { city: { type: 'string' }, unit: { type: ['string', 'null'], const: 'C' } }, required: ['city'], additionalProperties: false },
  },
};
const TIME: OpenAI.Chat.Completions.ChatCompletionTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } };

describe.each([
  ['managed_canadian_cloud', FLASH],
  ['managed_canadian_cloud', PRO],
  ['global', FLASH],
  ['global', PRO],
] as const)('under %s, %s', (tier, model) => {
  test('a streamed parallel tool-call round trip reaches Montréal', async () => {
    const { openai } = await gw.client({ tier });
    const question = 'ni-standin:tool_calls=2 Weather and time in Montréal?';
    const { data: stream, response } = await openai.chat.completions
      .create({ model, stream: true, stream_options: { include_usage: true }, tools: [WEATHER, TIME], messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: question }] })
      .withResponse();
    expect(response.headers.get('x-ni-privacy-tier')).toBe(tier);
    expect(parseCustodyPath(response.headers.get('x-ni-custody-path')!).map((h) => h.party)).toEqual(['ni-gateway', 'vertex_ai-standin']);
    const chunks = await collect(stream);
    const calls = streamedToolCalls(chunks);
    expect([...calls.keys()]).toEqual([0, 1]);
    expect([...calls.values()].map((c) => c.name)).toEqual(['get_weather', 'get_time']);
    for (const c of calls.values()) expect(JSON.parse(c.args)).toEqual({ text: question });
    const ids = [...calls.values()].map((c) => c.id);
    expect(new Set(ids).size).toBe(2);
    expect(finishReasonOf(chunks)).toBe('tool_calls');
    expect(chunks[chunks.length - 1].usage!.completion_tokens).toBeGreaterThan(0);

    const first = lastSent();
    expect(first).toMatchObject({ location: MONTREAL, model: model === FLASH ? 'gemini-2.5-flash' : 'gemini-2.5-pro', project: gw.vertexStandIn!.serviceAccountKey.project_id, authorized: true });
    expect(first.body.systemInstruction).toEqual({ parts: [{ text: 'Be brief.' }] });
    expect(first.body.tools[0].functionDeclarations[0]).toEqual({
      name: 'get_weather', description: 'Weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', nullable: true, enum: ['C'] } }, required: ['city'] },
    });

    const answer = await streamToolResults(openai, { model, tools: [WEATHER, TIME], question }, calls, [[ids[1], 'noon'], [ids[0], '-5C, snow']]);
    expect(streamedText(answer)).toBe('Tool results: noon | -5C, snow');
    expect(finishReasonOf(answer)).toBe('stop');
    const second = lastSent();
    expect(second.location).toBe(MONTREAL);
    expect(second.body.contents[1]).toEqual({ role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { text: question } } }, { functionCall: { name: 'get_time', args: { text: question } } }] });
    // Gemini's results carry no call id: each is matched back to its call's function name.
    expect(second.body.contents[2]).toEqual({ role: 'user', parts: [{ functionResponse: { name: 'get_time', response: { output: 'noon' } } }, { functionResponse: { name: 'get_weather', response: { output: '-5C, snow' } } }] });
  });
});

test('images go to Gemini as inlineData', async () => {
  const { openai } = await gw.client({ tier: 'managed_canadian_cloud' });
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
  await openai.chat.completions.create({
    model: FLASH,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }] }],
  });
  expect(lastSent().body.contents[0].parts).toEqual([{ text: 'What is this?' }, { inlineData: { mimeType: 'image/png', data: png.toString('base64') } }]);
});

test('thinking tokens are billed as output, cached tokens as cache reads; max_tokens reaches generationConfig', async () => {
  const { openai } = await gw.client({ tier: 'managed_canadian_cloud' });
  const prompt = 'ni-standin:thoughts=40 ni-standin:cache_read=100';
  const data = await openai.chat.completions.create({ model: PRO, max_tokens: 300, temperature: 0.3, stop: ['END'], messages: [{ role: 'user', content: prompt }] });
  expect(lastSent().body.generationConfig).toEqual({ maxOutputTokens: 300, temperature: 0.3, stopSequences: ['END'] });
  const visible = Math.ceil('Hello from the Vertex AI stand-in.'.length / 4);
  expect(data.usage).toMatchObject({ prompt_tokens: Math.ceil(prompt.length / 4) + 100, completion_tokens: visible + 40, prompt_tokens_details: { cached_tokens: 100 }, completion_tokens_details: { reasoning_tokens: 40 } });
  expect(data.choices[0].message.content).toBe('Hello from the Vertex AI stand-in.');
});

test('MAX_TOKENS finishes with length', async () => {
  const { openai } = await gw.client({ tier: 'global' });
  const data = await openai.chat.completions.create({ model: FLASH, max_tokens: 2, messages: [{ role: 'user', content: 'Hi' }] });
  expect(data.choices[0]).toMatchObject({ finish_reason: 'length', message: { content: 'Hello from ' } });
});

describe('errors are classified as for every provider', () => {
  test.each([400, 403, 429, 503])('Vertex AI %i', async (status) => {
    const { openai } = await gw.client({ tier: 'managed_canadian_cloud' });
    const answer = await refusal(openai, FLASH, `ni-standin:status=${status}`);
    expect(answer).toMatchObject(ANSWER_TO_UPSTREAM_STATUS[status]);
    if (status === 400) expect(answer.message).toContain('scripted status 400'); // Vertex AI's own words
  });

  test('an error event mid-stream ends the stream with an error', async () => {
    const { openai } = await gw.client({ tier: 'managed_canadian_cloud' });
    const stream = await openai.chat.completions.create({ model: FLASH, stream: true, messages: [{ role: 'user', content: 'ni-standin:fail_mid_stream' }] });
    await expect(collect(stream)).rejects.toThrow(/UNAVAILABLE during the response/);
  });
});

test('one access token serves many requests: the JWT exchange is cached', async () => {
  const { openai } = await gw.client({ tier: 'global' });
  for (let i = 0; i < 3; i++) await openai.chat.completions.create({ model: FLASH, messages: [{ role: 'user', content: 'Hi' }] });
  expect(requests().map((r) => r.authorized)).toEqual([true, true, true]);
  // At most one exchange (none when an earlier test's token is still valid), with the claims Google checks.
  const key = gw.vertexStandIn!.serviceAccountKey;
  expect(gw.vertexStandIn!.tokenRequests.length).toBeLessThanOrEqual(1);
  for (const t of gw.vertexStandIn!.tokenRequests) expect(t).toEqual({ iss: key.client_email, aud: key.token_uri, scope: 'https://www.googleapis.com/auth/cloud-platform' });
});

test('canadian_sovereign refuses Gemini: no Vertex route is Canadian-controlled', async () => {
  const { openai } = await gw.client({ tier: 'canadian_sovereign' });
  for (const model of [FLASH, PRO]) expect((await refusal(openai, model, 'Hi')).code).toBe('model_not_available_in_tier');
  expect(requests()).toEqual([]);
});

test("a default-tier key's model list has Gemini, with tools, images and a long context in the price list", async () => {
  const { openai } = await gw.client();
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  expect(ids).toEqual(expect.arrayContaining([FLASH, PRO]));
  const { models } = (await (await fetch(`${gw.url}/api/billing/models`)).json()) as { models: { model_id: string; context_window: number; capabilities: { tools: boolean; vision: boolean; streaming: boolean }; privacy_tiers: string[]; jurisdictions: string[] }[] };
  for (const id of [FLASH, PRO]) {
    const m = models.find((x) => x.model_id === id)!;
    expect(m.capabilities).toEqual({ streaming: true, tools: true, vision: true });
    expect(m.context_window).toBeGreaterThanOrEqual(128_000);
    expect(m.privacy_tiers).toEqual(['managed_canadian_cloud', 'global']);
    expect(m.jurisdictions).toEqual(['CA']);
  }
});
