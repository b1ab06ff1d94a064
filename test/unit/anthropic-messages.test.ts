import type { ChatRequest, StreamEvent } from '../../lambdas/core/chat';
import { fromMessagesStream, toMessagesRequest } from '../../lambdas/providers/anthropic/messages';
import type { SseEvent } from '../../lambdas/providers/http';

const base: ChatRequest = { model: 'anthropic/claude-sonnet-4.5', stream: true, includeUsage: false, system: [], messages: [], tools: [] };

async function* sse(...events: { type: string; [k: string]: unknown }[]): AsyncGenerator<SseEvent> {
  for (const e of events) yield { event: e.type, data: JSON.stringify(e) };
}

async function collect(source: AsyncIterable<SseEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of fromMessagesStream(source)) out.push(e);
  return out;
}

describe('toMessagesRequest', () => {
  const req: ChatRequest = {
    ...base,
    system: ['Be brief.'],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Look' }, { type: 'image', mediaType: 'image/png', data: new Uint8Array([255, 0]) }] },
      { role: 'assistant', content: [{ type: 'tool_call', id: 'toolu_1', name: 'lookup', input: { q: 'x' } }] },
      { role: 'user', content: [{ type: 'tool_result', callId: 'toolu_1', content: ['a', 'b'], isError: true }, { type: 'text', text: 'and?' }] },
    ],
    tools: [{ name: 'lookup', description: 'Find', inputSchema: { type: 'object', additionalProperties: false } }],
    temperature: 0.1, topP: 0.8, stop: ['END'],
  };

  test('system, images as base64 sources, tool_use and tool_result blocks, tools with their schemas as given, sampling', () => {
    expect(toMessagesRequest(req, 'claude-sonnet-4-5-20250929', 500)).toEqual({
      model: 'claude-sonnet-4-5-20250929', max_tokens: 500, stream: true,
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Look' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: '/wA=' } }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: 'x' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }], is_error: true }, { type: 'text', text: 'and?' }] },
      ],
      tools: [{ name: 'lookup', description: 'Find', input_schema: { type: 'object', additionalProperties: false } }],
      temperature: 0.1, top_p: 0.8, stop_sequences: ['END'],
    });
  });

  test('tool choice: required → any, named → tool, none → none with the tools kept for the history; a pinned geography', () => {
    expect(toMessagesRequest({ ...req, toolChoice: 'required' }, 'm', 1).tool_choice).toEqual({ type: 'any' });
    expect(toMessagesRequest({ ...req, toolChoice: { name: 'lookup' } }, 'm', 1).tool_choice).toEqual({ type: 'tool', name: 'lookup' });
    const none = toMessagesRequest({ ...req, toolChoice: 'none' }, 'm', 1);
    expect(none.tool_choice).toEqual({ type: 'none' });
    expect(none.tools).toHaveLength(1);
    expect(toMessagesRequest(req, 'm', 1).inference_geo).toBeUndefined();
    expect(toMessagesRequest(req, 'm', 1, 'us').inference_geo).toBe('us');
  });

  test('without tool definitions, tool blocks in history become text', () => {
    const out = toMessagesRequest({ ...req, tools: [] }, 'm', 1);
    expect(out.tools).toBeUndefined();
    expect(out.messages[1].content).toEqual([{ type: 'text', text: '[called tool lookup with {"q":"x"}]' }]);
    expect(out.messages[2].content[0]).toEqual({ type: 'text', text: '[tool result: a\nb]' });
  });
});

describe('fromMessagesStream', () => {
  const start = (usage: object) => ({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], usage } });

  test('text deltas, then finish and usage (input, cache reads and writes from message_start, output from message_delta)', async () => {
    expect(await collect(sse(
      start({ input_tokens: 12, cache_read_input_tokens: 100, cache_creation_input_tokens: 30, output_tokens: 1 }),
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'ping' },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Bon' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'jour' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 7 } },
      { type: 'message_stop' },
    ))).toEqual([
      { type: 'text', delta: 'Bon' },
      { type: 'text', delta: 'jour' },
      { type: 'finish', reason: 'stop' },
      { type: 'usage', usage: { input: 12, output: 7, cache_read: 100, cache_write: 30, reasoning: 0 } },
    ]);
  });

  test('parallel tool_use blocks after text: numbered from 0, input_json_delta fragments relayed, a call without input gets {}', async () => {
    expect(await collect(sse(
      start({ input_tokens: 5, output_tokens: 1 }),
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Checking.' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_a', name: 'weather', input: {} } },
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } },
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } },
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Ottawa"}' } },
      { type: 'content_block_stop', index: 1 },
      { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_b', name: 'clock', input: {} } },
      { type: 'content_block_stop', index: 2 },
      { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 40 } },
      { type: 'message_stop' },
    ))).toEqual([
      { type: 'text', delta: 'Checking.' },
      { type: 'tool_call', index: 0, id: 'toolu_a', name: 'weather' },
      { type: 'tool_arguments', index: 0, delta: '{"city":' },
      { type: 'tool_arguments', index: 0, delta: '"Ottawa"}' },
      { type: 'tool_call', index: 1, id: 'toolu_b', name: 'clock' },
      { type: 'tool_arguments', index: 1, delta: '{}' },
      { type: 'finish', reason: 'tool_calls' },
      { type: 'usage', usage: { input: 5, output: 40, cache_read: 0, cache_write: 0, reasoning: 0 } },
    ]);
  });

  test.each([
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['stop_sequence', 'stop'],
    ['refusal', 'content_filter'],
    ['pause_turn', 'stop'],
  ])('stop_reason %s → %s', async (reason, finish) => {
    const evs = await collect(sse(start({ input_tokens: 1 }), { type: 'message_delta', delta: { stop_reason: reason }, usage: { output_tokens: 1 } }, { type: 'message_stop' }));
    expect(evs).toContainEqual({ type: 'finish', reason: finish });
  });

  test('an error event throws an upstream stream error; a stream without message_stop has no finish', async () => {
    await expect(collect(sse(start({}), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }))).rejects.toMatchObject({ code: 'upstream_stream_error', message: expect.stringContaining('overloaded_error') });
    expect(await collect(sse(start({}), { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x' } }))).toEqual([{ type: 'text', delta: 'x' }]);
  });
});
