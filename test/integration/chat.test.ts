import OpenAI from 'openai';
import { fetchOpenAI } from '../support/openapi';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * The spine, end to end: the official openai client against the local runtime (same handlers as Lambda),
 * the Bedrock stand-in speaking the real ConverseStream protocol to the real AWS SDK, every body and chunk
 * checked against OpenAI's own schemas (the test client and raw requests go through fetchOpenAI).
 */

let gw: TestGateway;
let openai: OpenAI;
let secret: string;
const SONNET = 'anthropic/claude-sonnet-4.5';
const LLAMA = 'meta/llama-3-70b';

beforeAll(async () => {
  gw = await startTestGateway();
  const key = await gw.client({ tier: 'global' });
  openai = key.openai;
  secret = key.secret;
});
afterAll(() => gw.close());

const lastRecorded = () => gw.standIn!.requests[gw.standIn!.requests.length - 1];

async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

async function raw(path: string, init: RequestInit & { json?: unknown } = {}) {
  const res = await fetchOpenAI(`${gw.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  });
  return { res, text: await res.text() };
}

describe('non-streamed completions', () => {
  test('answer, usage and headers in OpenAI format', async () => {
    const { data, response } = await openai.chat.completions
      .create({ model: LLAMA, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }] })
      .withResponse();
    expect(data.model).toBe(LLAMA);
    expect(data.choices[0].message).toMatchObject({ role: 'assistant', content: 'Hello from the Bedrock stand-in.' });
    expect(data.choices[0].finish_reason).toBe('stop');
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
    const id = response.headers.get('x-request-id');
    expect(id).toBeTruthy();
    expect(response.headers.get('x-ni-request-id')).toBe(id);
    expect(data.id).toBe(`chatcmpl-${id}`);
    expect(response.headers.get('x-ni-resolved-jurisdiction')).toBe('SIMULATED');
    expect(response.headers.get('x-ni-privacy-tier')).toBe('global');
    const sent = lastRecorded();
    expect(sent.modelId).toBe('meta.llama3-70b-instruct-v1:0');
    expect(sent.body.system).toEqual([{ text: 'Be brief.' }]);
    expect(sent.body.messages).toEqual([{ role: 'user', content: [{ text: 'Hi there' }] }]);
  });

  test('cache reads and writes count into prompt_tokens and cached_tokens', async () => {
    const data = await openai.chat.completions.create({ model: SONNET, messages: [{ role: 'user', content: 'ni-standin:cache_read=100 ni-standin:cache_write=20' }] });
    const input = Math.ceil('ni-standin:cache_read=100 ni-standin:cache_write=20'.length / 4);
    expect(data.usage).toMatchObject({ prompt_tokens: input + 120, prompt_tokens_details: { cached_tokens: 100 } });
  });

  test('max_tokens, temperature, top_p and stop reach Converse; length finish', async () => {
    const data = await openai.chat.completions.create({
      model: SONNET, messages: [{ role: 'user', content: 'ni-standin:words=50' }], max_tokens: 5, temperature: 0.2, top_p: 0.9, stop: ['END'],
    });
    expect(lastRecorded().body.inferenceConfig).toEqual({ maxTokens: 5, temperature: 0.2, topP: 0.9, stopSequences: ['END'] });
    expect(data.choices[0].finish_reason).toBe('length');
    await openai.chat.completions.create({ model: SONNET, messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 7 });
    expect(lastRecorded().body.inferenceConfig.maxTokens).toBe(7);
  });
});

describe('streamed completions', () => {
  test('role first, text deltas, finish, usage chunk; one id, created and model', async () => {
    const chunks = await collect(await openai.chat.completions.create({
      model: SONNET, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hello?' }],
    }));
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(new Set(chunks.map((c) => `${c.id}|${c.created}|${c.model}`)).size).toBe(1);
    expect(chunks[0].model).toBe(SONNET);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe('Hello from the Bedrock stand-in.');
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(1);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish.map((c) => c.choices[0].finish_reason)).toEqual(['stop']);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBeGreaterThan(0);
  });

  test('SSE framing ends with [DONE] and residency headers come with the first byte', async () => {
    const { res, text } = await raw('/v1/chat/completions', { method: 'POST', json: { model: LLAMA, stream: true, messages: [{ role: 'user', content: 'hi' }] } });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-ni-custody-path')).toMatch(/^ni-gateway@local > bedrock-standin@loopback#meta\.llama3-70b-instruct-v1:0$/);
    const events = text.split('\n\n').filter(Boolean);
    expect(events[events.length - 1]).toBe('data: [DONE]');
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
  });

  test.each([
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['content_filtered', 'content_filter'],
    ['guardrail_intervened', 'content_filter'],
  ])('stopReason %s → finish_reason %s', async (stop, finish) => {
    const chunks = await collect(await openai.chat.completions.create({ model: SONNET, stream: true, messages: [{ role: 'user', content: `ni-standin:stop=${stop}` }] }));
    expect(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0].finish_reason).toBe(finish);
  });
});

const WEATHER: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
};
const TIME: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
};

describe('tool calls', () => {
  test('round trip: call → tool result → answer', async () => {
    const first = await openai.chat.completions.create({ model: SONNET, tools: [WEATHER], tool_choice: 'required', messages: [{ role: 'user', content: 'Weather in Ottawa?' }] });
    expect(lastRecorded().body.toolConfig.toolChoice).toEqual({ any: {} });
    const call = first.choices[0].message.tool_calls![0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expect(first.choices[0].finish_reason).toBe('tool_calls');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ text: 'Weather in Ottawa?' });
    const second = await openai.chat.completions.create({
      model: SONNET, tools: [WEATHER],
      messages: [{ role: 'user', content: 'Weather in Ottawa?' }, first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '-5C, snow' }],
    });
    expect(second.choices[0].message.content).toBe('Tool results: -5C, snow');
    const sent = lastRecorded().body;
    expect(sent.messages[1].content).toEqual([{ toolUse: { toolUseId: call.id, name: 'get_weather', input: { text: 'Weather in Ottawa?' } } }]);
    expect(sent.messages[2]).toEqual({ role: 'user', content: [{ toolResult: { toolUseId: call.id, content: [{ text: '-5C, snow' }] } }] });
  });

  test('parallel tool calls stream with stable indexes and merged results', async () => {
    const chunks = await collect(await openai.chat.completions.create({
      model: SONNET, stream: true, tools: [WEATHER, TIME], messages: [{ role: 'user', content: 'ni-standin:tool_calls=3 ni-standin:chunk=4' }],
    }));
    const calls = new Map<number, { id: string; name: string; args: string }>();
    for (const c of chunks) {
      for (const d of c.choices[0]?.delta.tool_calls ?? []) {
        if (d.id) calls.set(d.index, { id: d.id, name: d.function!.name!, args: '' });
        calls.get(d.index)!.args += d.function?.arguments ?? '';
      }
    }
    expect([...calls.keys()]).toEqual([0, 1, 2]);
    expect([...calls.values()].map((c) => c.name)).toEqual(['get_weather', 'get_time', 'get_weather']);
    for (const c of calls.values()) expect(JSON.parse(c.args)).toEqual({ text: 'ni-standin:tool_calls=3 ni-standin:chunk=4' });
    expect(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0].finish_reason).toBe('tool_calls');

    const ids = [...calls.values()].map((c) => c.id);
    const answer = await openai.chat.completions.create({
      model: SONNET, tools: [WEATHER, TIME],
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: null, tool_calls: [...calls.values()].map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.args } })) },
        ...ids.map((id, i) => ({ role: 'tool' as const, tool_call_id: id, content: `r${i}` })),
      ],
    });
    expect(answer.choices[0].message.content).toBe('Tool results: r0 | r1 | r2');
    const sent = lastRecorded().body.messages;
    expect(sent).toHaveLength(3);
    expect(sent[2].content.map((b: { toolResult: { toolUseId: string } }) => b.toolResult.toolUseId)).toEqual(ids);
  });

  test('named tool choice and empty arguments', async () => {
    await openai.chat.completions.create({
      model: SONNET, tools: [WEATHER, TIME], tool_choice: { type: 'function', function: { name: 'get_time' } },
      messages: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'noon' },
        { role: 'user', content: 'again' },
      ],
    });
    const sent = lastRecorded().body;
    expect(sent.toolConfig.toolChoice).toEqual({ tool: { name: 'get_time' } });
    expect(sent.messages[1].content).toEqual([{ toolUse: { toolUseId: 'call_1', name: 'get_time', input: {} } }]);
    expect(sent.messages[2].content).toEqual([{ toolResult: { toolUseId: 'call_1', content: [{ text: 'noon' }] } }, { text: 'again' }]);
  });

  test("tool_choice 'none' sends no tools and keeps the history valid", async () => {
    const data = await openai.chat.completions.create({
      model: SONNET, tools: [WEATHER], tool_choice: 'none',
      messages: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Ottawa"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'cold' },
      ],
    });
    expect(data.choices[0].message.tool_calls).toBeUndefined();
    const sent = lastRecorded().body;
    expect(sent.toolConfig).toBeUndefined();
    expect(JSON.stringify(sent.messages)).not.toMatch(/toolUse|toolResult/);
    expect(sent.messages[1].content[0].text).toContain('get_weather');
  });
});

describe('images', () => {
  const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

  test('data URIs become image bytes', async () => {
    await openai.chat.completions.create({
      model: SONNET,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }],
    });
    const block = lastRecorded().body.messages[0].content[1];
    expect(block.image.format).toBe('png');
    expect(block.image.source.bytes).toBe(PNG);
  });

  test('remote URLs are refused with a clear 400', async () => {
    const err = await openai.chat.completions
      .create({ model: SONNET, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toMatch(/does not fetch remote URLs/);
    expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe('messages.0.content.0');
  });
});

describe('errors in OpenAI format', () => {
  test('unknown model: 400 model_not_found with every available model', async () => {
    const { res, text } = await raw('/v1/chat/completions', { method: 'POST', json: { model: 'acme/no-such-model', messages: [{ role: 'user', content: 'x' }] } });
    expect(res.status).toBe(400);
    const body = JSON.parse(text);
    expect(body.error.code).toBe('model_not_found');
    expect(body.error.message).toMatch(/^Model 'acme\/no-such-model' is not deployed/);
    expect(body.error.available_models).toEqual(expect.arrayContaining([SONNET, LLAMA, 'meta/llama-3-8b']));
    for (const m of body.error.available_models) expect(body.error.message).toContain(m);
  });

  test('wrong types are 400 with the param; unknown fields are tolerated', async () => {
    const bad = await raw('/v1/chat/completions', { method: 'POST', json: { model: LLAMA, messages: 'hi' } });
    expect(bad.res.status).toBe(400);
    expect(JSON.parse(bad.text).error).toMatchObject({ type: 'invalid_request_error', param: 'messages' });
    const ok = await raw('/v1/chat/completions', { method: 'POST', json: { model: LLAMA, messages: [{ role: 'user', content: 'x' }], frobnicate: true, user: 'u1' } });
    expect(ok.res.status).toBe(200);
    const n = await raw('/v1/chat/completions', { method: 'POST', json: { model: LLAMA, n: 2, messages: [{ role: 'user', content: 'x' }] } });
    expect(JSON.parse(n.text).error).toMatchObject({ param: 'n' });
    const notJson = await raw('/v1/chat/completions', { method: 'POST', body: '{nope' });
    expect(notJson.res.status).toBe(400);
  });

  test('oversized bodies: 413 in OpenAI format', async () => {
    const { res } = await raw('/v1/chat/completions', { method: 'POST', json: { model: LLAMA, messages: [{ role: 'user', content: 'x'.repeat(7 * 1024 * 1024) }] } });
    expect(res.status).toBe(413);
    // Sent chunked, with no content-length to refuse it by: counted as it arrives.
    const piece = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 7 * 16) controller.enqueue(piece);
        else controller.close();
      },
    });
    const chunked = await raw('/v1/chat/completions', { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(chunked.res.status).toBe(413);
  });

  test('throttling before the first byte is retried, then 429', async () => {
    const ok = await openai.chat.completions.create({ model: SONNET, messages: [{ role: 'user', content: 'ni-standin:throttle=1 once' }] });
    expect(ok.choices[0].message.content).toBeTruthy();
    const before = gw.standIn!.requests.length;
    const err = await openai.chat.completions.create({ model: SONNET, messages: [{ role: 'user', content: 'ni-standin:throttle=always' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_throttled');
    expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBe('2');
    expect(gw.standIn!.requests.length - before).toBe(3);
  });

  test('provider validation errors are 400', async () => {
    const err = await openai.chat.completions.create({ model: SONNET, messages: [{ role: 'user', content: 'ni-standin:validation_error' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  });

  test('an error after streaming began is the final SSE event', async () => {
    const { res, text } = await raw('/v1/chat/completions', { method: 'POST', json: { model: SONNET, stream: true, messages: [{ role: 'user', content: 'ni-standin:fail_mid_stream ni-standin:words=10' }] } });
    expect(res.status).toBe(200);
    const events = text.split('\n\n').filter(Boolean).map((e) => e.slice('data: '.length));
    const last = JSON.parse(events[events.length - 1]);
    expect(last.error.code).toBe('upstream_stream_error');
    expect(events.slice(0, -1).some((e) => JSON.parse(e).choices[0]?.delta?.content)).toBe(true);
    expect(text).not.toContain('[DONE]');
    expect(text).not.toContain('"finish_reason":"stop"');
    const client = await openai.chat.completions.create({ model: SONNET, stream: true, messages: [{ role: 'user', content: 'ni-standin:fail_mid_stream' }] });
    await expect(collect(client)).rejects.toThrow(/failed|reported/);
  });

  test('a stream that ends without messageStop is an error, not a finish', async () => {
    const { text } = await raw('/v1/chat/completions', { method: 'POST', json: { model: SONNET, stream: true, messages: [{ role: 'user', content: 'ni-standin:truncate ni-standin:words=10' }] } });
    const events = text.split('\n\n').filter(Boolean);
    expect(JSON.parse(events[events.length - 1].slice(6)).error.code).toBe('upstream_stream_error');
    expect(text).not.toMatch(/"finish_reason":"(stop|length)"/);
    const nonStream = await raw('/v1/chat/completions', { method: 'POST', json: { model: SONNET, messages: [{ role: 'user', content: 'ni-standin:truncate' }] } });
    expect(nonStream.res.status).toBe(502);
  });

  test('missing key: 401 invalid_api_key', async () => {
    const res = await fetchOpenAI(`${gw.url}/v1/models`);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ message: 'Invalid API key', type: 'invalid_request_error', code: 'invalid_api_key' });
  });
});

describe('what Cursor sends', () => {
  test('Anthropic-style blocks, system as blocks, flat and custom tools', async () => {
    const body = {
      model: SONNET,
      system: [{ type: 'text', text: 'You are a coding agent.', cache_control: { type: 'ephemeral' } }],
      tools: [
        { type: 'function', name: 'read_file', description: 'Read a file', parameters: { type: 'object', properties: { path: { type: 'string' } } } },
        { name: 'grep', input_schema: { type: 'object', properties: { q: { type: 'string' } } } },
        { type: 'custom', name: 'apply_patch', description: 'Apply a patch' },
      ],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Open main.ts', cache_control: { type: 'ephemeral' } }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Reading.' }, { type: 'tool_use', id: 'toolu_01', name: 'read_file', input: { path: 'main.ts' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: [{ type: 'text', text: 'export {}' }] }] },
      ],
    };
    const { res, text } = await raw('/v1/chat/completions', { method: 'POST', json: body });
    expect(res.status).toBe(200);
    const data = JSON.parse(text);
    expect(data.choices[0].message.content).toBe('Tool results: export {}');
    const sent = lastRecorded().body;
    expect(sent.system).toEqual([{ text: 'You are a coding agent.' }]);
    expect(sent.toolConfig.tools.map((t: { toolSpec: { name: string } }) => t.toolSpec.name)).toEqual(['read_file', 'grep', 'apply_patch']);
    expect(sent.toolConfig.tools[2].toolSpec.inputSchema.json.properties.input.type).toBe('string');
    expect(sent.messages[1].content[1]).toEqual({ toolUse: { toolUseId: 'toolu_01', name: 'read_file', input: { path: 'main.ts' } } });
  });

  test('custom tools as chat completions nests them: calls come back as custom tool calls', async () => {
    const data = await openai.chat.completions.create({
      model: SONNET,
      tools: [{ type: 'custom', custom: { name: 'apply_patch', description: 'Apply a patch' } }],
      tool_choice: { type: 'custom', custom: { name: 'apply_patch' } },
      messages: [{ role: 'user', content: 'patch it ni-standin:tool_calls=1' }],
    });
    const call = data.choices[0].message.tool_calls![0];
    expect(call.type).toBe('custom');
    expect(call.type === 'custom' && call.custom.name).toBe('apply_patch');
    expect(call.type === 'custom' && typeof call.custom.input).toBe('string');
    expect(lastRecorded().body.toolConfig.toolChoice).toEqual({ tool: { name: 'apply_patch' } });
  });

  test('tools offered to a model that takes none: 400 naming the models that do, nothing sent upstream', async () => {
    const before = gw.standIn!.requests.length;
    const err = await openai.chat.completions.create({
      model: LLAMA, tools: [{ type: 'function', function: { name: 'read_file', parameters: { type: 'object', properties: {} } } }],
      messages: [{ role: 'user', content: 'x' }],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('model_does_not_support_tools');
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toMatch(/Models in privacy tier 'global' that do: .*anthropic\/claude-sonnet-4\.5/);
    expect(gw.standIn!.requests.length).toBe(before);
  });

  test('a Responses-shaped body posted to /v1/chat/completions', async () => {
    const { res, text } = await raw('/v1/chat/completions', {
      method: 'POST',
      json: {
        model: SONNET, stream: true, instructions: 'Be terse.',
        tools: [{ type: 'function', name: 'run', parameters: { type: 'object', properties: {} } }],
        input: [
          { role: 'developer', content: 'Answer in English.' },
          { role: 'user', content: [{ type: 'input_text', text: 'run it' }] },
          { type: 'function_call', call_id: 'call_9', name: 'run', arguments: '{}' },
          { type: 'function_call_output', call_id: 'call_9', output: 'done' },
        ],
      },
    });
    expect(res.status).toBe(200);
    const chunks = text.split('\n\n').filter((e) => e && e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)));
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Tool results: done');
    expect(lastRecorded().body.system).toEqual([{ text: 'Be terse.' }, { text: 'Answer in English.' }]);
  });

  test('GET /v1/models lists the catalog for the key, and preflights need no key', async () => {
    const list = await openai.models.list();
    expect(list.data.map((m) => m.id)).toEqual(expect.arrayContaining([SONNET, LLAMA]));
    const pre = await fetch(`${gw.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://cursor.sh', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization/);
  });
});

test('the local runtime answers /health', async () => {
  const res = await fetch(`${gw.url}/health`);
  expect(res.status).toBe(200);
});
