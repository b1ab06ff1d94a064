import type { StreamEvent } from '../../lambdas/core/chat';
import { GatewayError } from '../../lambdas/core/errors';
import { parseChatRequest } from '../../lambdas/core/openai';
import { fromChatCompletionChunks, toChatCompletionsBody, type ChatCompletionChunk } from '../../lambdas/providers/openai-compatible/chat-completions';

const parse = (body: object) => parseChatRequest(JSON.stringify({ model: 'openai/gpt-4o', ...body }));
const upstream = (body: object, maxTokensField: 'max_tokens' | 'max_completion_tokens' = 'max_tokens') => toChatCompletionsBody(parse(body), 'gpt-4o-deployment', 1000, { maxTokensField });

const TOOL = { type: 'function', function: { name: 'lookup', description: 'd', parameters: { type: 'object', properties: { q: { type: 'string' } } } } };

/** Chunks as parsed from the wire (Azure's carry fields the mapping does not declare). */
async function collect(chunks: object[]): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const e of fromChatCompletionChunks((async function* () { yield* chunks as ChatCompletionChunk[]; })())) events.push(e);
  return events;
}

describe('gateway request → chat completions', () => {
  test('streams with usage, names the upstream model, and puts the output budget in the field the provider takes', () => {
    const body = upstream({ messages: [{ role: 'user', content: 'hi' }], temperature: 0.2, top_p: 0.9, stop: ['x'] });
    expect(body).toMatchObject({ model: 'gpt-4o-deployment', stream: true, stream_options: { include_usage: true }, max_tokens: 1000, temperature: 0.2, top_p: 0.9, stop: ['x'] });
    expect(upstream({ messages: [{ role: 'user', content: 'hi' }] }, 'max_completion_tokens')).toMatchObject({ max_completion_tokens: 1000 });
    expect(upstream({ messages: [{ role: 'user', content: 'hi' }] }, 'max_completion_tokens')).not.toHaveProperty('max_tokens');
  });

  test('system first; tool calls, tool results (as tool messages, before what the user added) and images keep their shape', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]).toString('base64');
    const body = upstream({
      tools: [TOOL], tool_choice: { type: 'function', function: { name: 'lookup' } },
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] },
        { role: 'assistant', content: 'calling', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"q":"a"}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'found' },
      ],
    });
    expect(body.messages).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] },
      { role: 'assistant', content: 'calling', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"q":"a"}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'found' },
    ]);
    expect(body.tools).toEqual([{ type: 'function', function: { name: 'lookup', description: 'd', parameters: TOOL.function.parameters } }]);
    expect(body.tool_choice).toEqual({ type: 'function', function: { name: 'lookup' } });
  });

  test("tool_choice 'none' sends no tools", () => {
    const body = upstream({ tools: [TOOL], tool_choice: 'none', messages: [{ role: 'user', content: 'x' }] });
    expect(body.tools).toBeUndefined();
    expect(body.tool_choice).toBeUndefined();
  });
});

describe('chat completion chunks → gateway stream', () => {
  test("Azure's quirks: the leading choices: [] chunk with prompt_filter_results and content_filter_results carry nothing", async () => {
    const events = await collect([
      { choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] },
      { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, content_filter_results: {} }] },
      { choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: null, content_filter_results: { hate: { filtered: false } } }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'content_filter' }] },
    ]);
    expect(events).toEqual([{ type: 'text', delta: 'Hi' }, { type: 'finish', reason: 'content_filter' }]);
  });

  test('parallel tool calls are numbered in the order they start; one without arguments gets {}', async () => {
    const events = await collect([
      { choices: [{ delta: { tool_calls: [{ index: 0, id: 'a', function: { name: 'f', arguments: '' } }] } }] },
      { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '{"x"' } }] } }] },
      { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: ':1}' } }, { index: 1, id: 'b', function: { name: 'g' } }] } }] },
      { choices: [{ delta: {}, finish_reason: 'tool_calls' }] },
    ]);
    expect(events).toEqual([
      { type: 'tool_call', index: 0, id: 'a', name: 'f' },
      { type: 'tool_arguments', index: 0, delta: '{"x"' },
      { type: 'tool_arguments', index: 0, delta: ':1}' },
      { type: 'tool_call', index: 1, id: 'b', name: 'g' },
      { type: 'tool_arguments', index: 1, delta: '{}' },
      { type: 'finish', reason: 'tool_calls' },
    ]);
  });

  test('usage: cached prompt tokens are cache reads (input is the rest), reasoning tokens are part of output', async () => {
    const events = await collect([
      { choices: [{ delta: { content: 'ok' }, finish_reason: 'stop' }] },
      { choices: [], usage: { prompt_tokens: 1000, completion_tokens: 300, prompt_tokens_details: { cached_tokens: 600 }, completion_tokens_details: { reasoning_tokens: 200 } } },
    ]);
    expect(events.slice(1)).toEqual([
      { type: 'finish', reason: 'stop' },
      { type: 'usage', usage: { input: 400, output: 300, cache_read: 600, cache_write: 0, reasoning: 200 } },
    ]);
  });

  test('a host that reports no token details: everything is plain input and output', async () => {
    const events = await collect([{ choices: [{ delta: {}, finish_reason: 'length' }], usage: { prompt_tokens: 10, completion_tokens: 5 } }]);
    expect(events).toEqual([{ type: 'finish', reason: 'length' }, { type: 'usage', usage: { input: 10, output: 5, cache_read: 0, cache_write: 0, reasoning: 0 } }]);
  });

  test('an error chunk mid-stream is an upstream stream error, never a normal end', async () => {
    await expect(collect([{ choices: [{ delta: { content: 'par' } }] }, { error: { message: 'overloaded' } }])).rejects.toThrow(GatewayError);
    await expect(collect([{ choices: [{ delta: { content: 'par' } }] }, { error: { message: 'overloaded' } }])).rejects.toMatchObject({ code: 'upstream_stream_error' });
  });
});
