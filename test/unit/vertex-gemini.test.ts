import type { ChatRequest, StreamEvent } from '../../lambdas/core/chat';
import type { SseEvent } from '../../lambdas/providers/http';
import { fromGenerateContentStream, geminiSchema, toGenerateContentRequest } from '../../lambdas/providers/vertex-ai/gemini';

const base: ChatRequest = { model: 'vertex_ai/gemini-2-5-flash', stream: true, includeUsage: false, system: [], messages: [], tools: [] };

async function* sse(...chunks: object[]): AsyncGenerator<SseEvent> {
  for (const c of chunks) yield { data: JSON.stringify(c) };
}

async function events(source: AsyncIterable<SseEvent>, sha = 'ab'.repeat(32)): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of fromGenerateContentStream(source, sha)) out.push(e);
  return out;
}

describe('geminiSchema', () => {
  test('drops what Gemini rejects at every level, keeps its subset', () => {
    expect(geminiSchema({
      $schema: 'http://json-schema.org/draft-07/schema#', $id: 'x', type: 'object', additionalProperties: false, required: ['q'],
      properties: {
        q: { type: 'string', minLength: 1, description: 'query' },
        tags: { type: 'array', items: { type: 'object', additionalProperties: { type: 'string' }, properties: { k: { type: 'string', format: 'uri' } } } },
        mode: { const: 'fast' },
        limit: { type: ['integer', 'null'], minimum: 1, exclusiveMaximum: 100 },
        either: { anyOf: [{ type: 'string', $comment: 'c' }, { type: 'number' }] },
      },
    })).toEqual({
      type: 'object', required: ['q'],
      properties: {
        q: { type: 'string', minLength: 1, description: 'query' },
        tags: { type: 'array', items: { type: 'object', properties: { k: { type: 'string', format: 'uri' } } } },
        mode: { enum: ['fast'] },
        limit: { type: 'integer', nullable: true, minimum: 1 },
        either: { anyOf: [{ type: 'string' }, { type: 'number' }] },
      },
    });
  });
});

describe('toGenerateContentRequest', () => {
  const req: ChatRequest = {
    ...base,
    system: ['Be brief.', 'Answer in French.'],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Look' }, { type: 'image', mediaType: 'image/jpeg', data: new Uint8Array([1, 2, 3]) }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Calling.' }, { type: 'tool_call', id: 'call_a', name: 'lookup', input: { q: 'x' } }, { type: 'tool_call', id: 'call_b', name: 'clock', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', callId: 'call_b', content: ['noon'], isError: false }, { type: 'tool_result', callId: 'call_a', content: ['not', 'found'], isError: true }] },
    ],
    tools: [{ name: 'lookup', description: 'Find', inputSchema: { type: 'object', additionalProperties: false, properties: { q: { type: 'string' } } } }, { name: 'clock', inputSchema: { type: 'object' } }],
    maxTokens: 100, temperature: 0.5, topP: 0.9, stop: ['END'],
  };

  test('roles, system instruction, inlineData, function calls and responses by name, declarations, generation config', () => {
    expect(toGenerateContentRequest(req, 100)).toEqual({
      contents: [
        { role: 'user', parts: [{ text: 'Look' }, { inlineData: { mimeType: 'image/jpeg', data: 'AQID' } }] },
        { role: 'model', parts: [{ text: 'Calling.' }, { functionCall: { name: 'lookup', args: { q: 'x' } } }, { functionCall: { name: 'clock', args: {} } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'clock', response: { output: 'noon' } } }, { functionResponse: { name: 'lookup', response: { error: 'not\nfound' } } }] },
      ],
      systemInstruction: { parts: [{ text: 'Be brief.' }, { text: 'Answer in French.' }] },
      tools: [{ functionDeclarations: [{ name: 'lookup', description: 'Find', parameters: { type: 'object', properties: { q: { type: 'string' } } } }, { name: 'clock', parameters: { type: 'object' } }] }],
      generationConfig: { maxOutputTokens: 100, temperature: 0.5, topP: 0.9, stopSequences: ['END'] },
    });
  });

  test('tool choice: required → ANY, a named tool → ANY limited to it, none → no tools and history as text', () => {
    expect(toGenerateContentRequest({ ...req, toolChoice: 'required' }, 1).toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY' } });
    expect(toGenerateContentRequest({ ...req, toolChoice: { name: 'clock' } }, 1).toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['clock'] } });
    const none = toGenerateContentRequest({ ...req, toolChoice: 'none' }, 1);
    expect(none.tools).toBeUndefined();
    expect(none.contents[1].parts[1]).toEqual({ text: '[called tool lookup with {"q":"x"}]' });
    expect(none.contents[2].parts[0]).toEqual({ text: '[tool result: noon]' });
  });

  test('a result whose call is not in the history is kept as text (Gemini needs the name)', () => {
    const out = toGenerateContentRequest({ ...req, messages: [{ role: 'user', content: [{ type: 'tool_result', callId: 'gone', content: ['x'], isError: false }] }] }, 1);
    expect(out.contents[0].parts).toEqual([{ text: '[tool result: x]' }]);
  });
});

describe('fromGenerateContentStream', () => {
  test('text deltas, finish, usage with thoughts as output and reasoning, cached tokens as cache reads', async () => {
    expect(await events(sse(
      { candidates: [{ content: { role: 'model', parts: [{ text: 'thinking…', thought: true }] } }] },
      { candidates: [{ content: { role: 'model', parts: [{ text: 'Sal' }] } }], usageMetadata: { promptTokenCount: 50 } },
      { candidates: [{ content: { role: 'model', parts: [{ text: 'ut' }] }, finishReason: 'STOP' }], usageMetadata: { promptTokenCount: 50, candidatesTokenCount: 2, thoughtsTokenCount: 30, cachedContentTokenCount: 20, totalTokenCount: 82 } },
    ))).toEqual([
      { type: 'text', delta: 'Sal' },
      { type: 'text', delta: 'ut' },
      { type: 'finish', reason: 'stop' },
      { type: 'usage', usage: { input: 30, output: 32, cache_read: 20, cache_write: 0, reasoning: 30 } },
    ]);
  });

  test('parallel function calls get stable, distinct ids and whole arguments; STOP after calls finishes with tool_calls', async () => {
    const chunk = { candidates: [{ content: { parts: [{ functionCall: { name: 'a', args: { x: 1 } } }, { functionCall: { name: 'b' } }] }, finishReason: 'STOP' }] };
    const first = await events(sse(chunk));
    expect(first).toEqual([
      { type: 'tool_call', index: 0, id: expect.stringMatching(/^call_[0-9a-f]{24}$/), name: 'a' },
      { type: 'tool_arguments', index: 0, delta: '{"x":1}' },
      { type: 'tool_call', index: 1, id: expect.stringMatching(/^call_[0-9a-f]{24}$/), name: 'b' },
      { type: 'tool_arguments', index: 1, delta: '{}' },
      { type: 'finish', reason: 'tool_calls' },
    ]);
    const ids = (evs: StreamEvent[]) => evs.flatMap((e) => (e.type === 'tool_call' ? [e.id] : []));
    expect(new Set(ids(first)).size).toBe(2);
    expect(ids(await events(sse(chunk)))).toEqual(ids(first));
    expect(ids(await events(sse(chunk), 'cd'.repeat(32)))).not.toEqual(ids(first));
  });

  test('an id Gemini gives is kept', async () => {
    const evs = await events(sse({ candidates: [{ content: { parts: [{ functionCall: { id: 'fc-1', name: 'a', args: {} } }] }, finishReason: 'STOP' }] }));
    expect(evs[0]).toEqual({ type: 'tool_call', index: 0, id: 'fc-1', name: 'a' });
  });

  test.each([
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['OTHER', 'stop'],
  ])('finishReason %s → %s', async (reason, finish) => {
    expect(await events(sse({ candidates: [{ content: { parts: [{ text: 'x' }] }, finishReason: reason }] }))).toContainEqual({ type: 'finish', reason: finish });
  });

  test('a blocked prompt finishes with content_filter', async () => {
    expect(await events(sse({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 9 } }))).toEqual([
      { type: 'finish', reason: 'content_filter' },
      { type: 'usage', usage: { input: 9, output: 0, cache_read: 0, cache_write: 0, reasoning: 0 } },
    ]);
  });

  test('a stream that ends without a finish reason reports none (the gateway reports it cut off); an error event throws', async () => {
    expect(await events(sse({ candidates: [{ content: { parts: [{ text: 'x' }] } }] }))).toEqual([{ type: 'text', delta: 'x' }]);
    await expect(events(sse({ candidates: [{ content: { parts: [{ text: 'x' }] } }] }, { error: { code: 503, status: 'UNAVAILABLE', message: 'm' } }))).rejects.toMatchObject({ code: 'upstream_stream_error', message: expect.stringContaining('UNAVAILABLE') });
  });
});
