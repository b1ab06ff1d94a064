import { ChunkFormatter, CompletionAccumulator, openAIUsage } from '../../lambdas/core/completions';
import { AnswerReader, type CompletionSink } from '../../lambdas/core/stream';
import { GatewayError } from '../../lambdas/core/errors';
import { parseChatRequest } from '../../lambdas/core/openai';
import { fromConverseStream, toConverseInput, type ConverseStreamEvent } from '../../lambdas/providers/bedrock/converse';

const parse = (body: object) => parseChatRequest(JSON.stringify({ model: 'anthropic/claude-sonnet-4.5', ...body }));
const converse = (body: object) => toConverseInput(parse(body), 'upstream-id', 1000);

const TOOL = { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } };

describe('OpenAI request → Converse', () => {
  test('system and developer messages become system blocks, in order', () => {
    const input = converse({ messages: [{ role: 'system', content: 'a' }, { role: 'developer', content: [{ type: 'text', text: 'b' }] }, { role: 'user', content: 'c' }] });
    expect(input.system).toEqual([{ text: 'a' }, { text: 'b' }]);
    expect(input.messages).toEqual([{ role: 'user', content: [{ text: 'c' }] }]);
  });

  test('consecutive tool messages merge into ONE user message after the assistant turn', () => {
    const input = converse({
      tools: [TOOL],
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{"x":1}' } }, { id: 'b', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'a', content: 'one' },
        { role: 'tool', tool_call_id: 'b', content: [{ type: 'text', text: 'two' }] },
      ],
    });
    expect(input.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(input.messages[2].content).toEqual([
      { toolResult: { toolUseId: 'a', content: [{ text: 'one' }] } },
      { toolResult: { toolUseId: 'b', content: [{ text: 'two' }] } },
    ]);
  });

  test('empty and missing arguments become {}', () => {
    for (const args of ['', '   ', undefined]) {
      const input = converse({ tools: [TOOL], messages: [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: args } }] }] });
      expect(input.messages[1].content).toEqual([{ toolUse: { toolUseId: 'a', name: 'f', input: {} } }]);
    }
  });

  test('invalid argument JSON is a 400, not a crash', () => {
    expect(() => parse({ messages: [{ role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{' } }] }] }))
      .toThrow(GatewayError);
  });

  test("tool blocks in history with tool_choice 'none': no toolConfig, history as text", () => {
    const input = converse({
      tools: [TOOL], tool_choice: 'none',
      messages: [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{"q":1}' } }] }, { role: 'tool', tool_call_id: 'a', content: 'r' }],
    });
    expect(input.toolConfig).toBeUndefined();
    expect(input.messages[1].content).toEqual([{ text: '[called tool f with {"q":1}]' }]);
    expect(input.messages[2].content).toEqual([{ text: '[tool result: r]' }]);
  });

  test('tool history without tools in the request is kept as text too', () => {
    const input = converse({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'a', content: 'r' }] });
    expect(input.toolConfig).toBeUndefined();
    expect(JSON.stringify(input.messages)).not.toMatch(/toolUse|toolResult/);
  });

  test('tool_choice: auto, required → any, named → tool', () => {
    expect(converse({ tools: [TOOL], messages: [{ role: 'user', content: 'x' }] }).toolConfig!.toolChoice).toBeUndefined();
    expect(converse({ tools: [TOOL], tool_choice: 'auto', messages: [{ role: 'user', content: 'x' }] }).toolConfig!.toolChoice).toBeUndefined();
    expect(converse({ tools: [TOOL], tool_choice: 'required', messages: [{ role: 'user', content: 'x' }] }).toolConfig!.toolChoice).toEqual({ any: {} });
    expect(converse({ tools: [TOOL], tool_choice: { type: 'function', function: { name: 'f' } }, messages: [{ role: 'user', content: 'x' }] }).toolConfig!.toolChoice).toEqual({ tool: { name: 'f' } });
  });

  test('tool ids Converse would reject are rewritten consistently', () => {
    const input = converse({
      tools: [TOOL],
      messages: [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'call|fc.1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'call|fc.1', content: 'r' }],
    });
    const use = input.messages[1].content[0] as { toolUse: { toolUseId: string } };
    const result = input.messages[2].content[0] as { toolResult: { toolUseId: string } };
    expect(use.toolUse.toolUseId).toMatch(/^[a-zA-Z0-9_-]+$/);
    expect(result.toolResult.toolUseId).toBe(use.toolUse.toolUseId);
  });

  test('images: data URIs only, known formats only', () => {
    const input = converse({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/webp;base64,AAEC' } }] }] });
    expect(input.messages[0].content[0]).toEqual({ image: { format: 'webp', source: { bytes: Buffer.from([0, 1, 2]) } } });
    expect(() => parse({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/tiff;base64,AAEC' } }] }] })).toThrow(/Unsupported image type/);
    expect(() => parse({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }] })).toThrow(/remote URLs/);
  });

  test('custom tools, nested as chat completions sends them or flat as Cursor does: one free-form string input', () => {
    const input = converse({
      tools: [{ type: 'custom', custom: { name: 'apply_patch', description: 'Apply a patch' } }, { type: 'custom', name: 'shell', description: 'Run' }],
      tool_choice: { type: 'custom', custom: { name: 'apply_patch' } },
      messages: [{ role: 'user', content: 'x' }],
    });
    const schema = { json: { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] } };
    expect(input.toolConfig).toEqual({
      tools: [
        { toolSpec: { name: 'apply_patch', description: 'Apply a patch', inputSchema: schema } },
        { toolSpec: { name: 'shell', description: 'Run', inputSchema: schema } },
      ],
      toolChoice: { tool: { name: 'apply_patch' } },
    });
  });

  test('Responses-shaped input: system and developer items become system blocks', () => {
    const input = converse({
      instructions: 'first',
      input: [
        { role: 'system', content: 'a' },
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'b' }] },
        { role: 'user', content: [{ type: 'input_text', text: 'c' }] },
      ],
    });
    expect(input.system).toEqual([{ text: 'first' }, { text: 'a' }, { text: 'b' }]);
    expect(input.messages).toEqual([{ role: 'user', content: [{ text: 'c' }] }]);
  });

  test('n other than 1 and wrong types are 400s naming the param', () => {
    const err = (body: object) => { try { parse(body); } catch (e) { return e as GatewayError; } throw new Error('no error'); };
    expect(err({ n: 3, messages: [] }).param).toBe('n');
    expect(err({ messages: [{ role: 'user', content: 5 }] }).param).toBe('messages.0.content');
    expect(err({ messages: [], temperature: 'hot' }).param).toBe('temperature');
    expect(err({ messages: [], max_tokens: -1 }).status).toBe(400);
  });
});

async function* stream(events: ConverseStreamEvent[]): AsyncGenerator<ConverseStreamEvent> {
  yield* events;
}

/** One tool-use content block as ConverseStream sends it: start, the input (if any) in one delta, stop. */
const toolBlock = (index: number, toolUseId: string, name: string, input?: string): ConverseStreamEvent[] => [
  { contentBlockStart: { contentBlockIndex: index, start: { toolUse: { toolUseId, name } } } },
  ...(input === undefined ? [] : [{ contentBlockDelta: { contentBlockIndex: index, delta: { toolUse: { input } } } }]),
  { contentBlockStop: { contentBlockIndex: index } },
];

class Recorder implements CompletionSink {
  out: string[] = [];
  text(d: string) { this.out.push(`text:${d}`); }
  toolCall(i: number, id: string, name: string) { this.out.push(`call:${i}:${id}:${name}`); }
  toolArguments(i: number, f: string) { this.out.push(`args:${i}:${f}`); }
}

describe('ConverseStream → completion deltas', () => {
  const run = async (events: ConverseStreamEvent[]) => {
    const rec = new Recorder();
    const reader = new AnswerReader(rec);
    for await (const e of fromConverseStream(stream(events))) reader.handle(e);
    return { rec, reader };
  };

  test('parallel tool calls get stable indexes in start order', async () => {
    const { rec, reader } = await run([
      { messageStart: { role: 'assistant' } },
      { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'Let me look.' } } },
      { contentBlockStart: { contentBlockIndex: 1, start: { toolUse: { toolUseId: 't1', name: 'a' } } } },
      { contentBlockStart: { contentBlockIndex: 2, start: { toolUse: { toolUseId: 't2', name: 'b' } } } },
      { contentBlockDelta: { contentBlockIndex: 2, delta: { toolUse: { input: '{"y"' } } } },
      { contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: '{"x":1}' } } } },
      { contentBlockDelta: { contentBlockIndex: 2, delta: { toolUse: { input: ':2}' } } } },
      { messageStop: { stopReason: 'tool_use' } },
      { metadata: { usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 3 } } },
    ]);
    expect(rec.out).toEqual(['text:Let me look.', 'call:0:t1:a', 'call:1:t2:b', 'args:1:{"y"', 'args:0:{"x":1}', 'args:1::2}']);
    expect(reader.complete()).toBe('tool_calls');
    expect(reader.usage).toEqual({ input: 10, output: 5, cache_read: 3, cache_write: 0, reasoning: 0 });
  });

  test('a tool call that streams no arguments gets {} when its block stops; others get nothing extra', async () => {
    const { rec } = await run([...toolBlock(0, 't1', 'now'), ...toolBlock(1, 't2', 'f', '{"x":1}'), { messageStop: { stopReason: 'tool_use' } }]);
    expect(rec.out).toEqual(['call:0:t1:now', 'args:0:{}', 'call:1:t2:f', 'args:1:{"x":1}']);
  });

  test('a stream without messageStop is an error, never a finish', async () => {
    const { reader } = await run([{ messageStart: { role: 'assistant' } }, { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'partial' } } }]);
    expect(() => reader.complete()).toThrow(/before it was complete/);
  });

  test('exception events fail the stream', async () => {
    await expect(run([{ internalServerException: { message: 'boom' } } as ConverseStreamEvent])).rejects.toThrow(GatewayError);
  });
});

describe('OpenAI output', () => {
  test('usage counts cache tokens into prompt_tokens, and reports the reasoning part of completion_tokens', () => {
    expect(openAIUsage({ input: 10, output: 4, cache_read: 100, cache_write: 20, reasoning: 3 })).toEqual({
      prompt_tokens: 130, completion_tokens: 4, total_tokens: 134, prompt_tokens_details: { cached_tokens: 100 }, completion_tokens_details: { reasoning_tokens: 3 },
    });
  });

  test('chunks are valid JSON SSE lines with one identity', () => {
    const lines: string[] = [];
    const fmt = new ChunkFormatter((s) => lines.push(s), { id: 'chatcmpl-1', created: 1, model: 'm/"quoted"' });
    fmt.role();
    fmt.text('he said "hi"\n');
    fmt.toolCall(0, 'id', 'f');
    fmt.toolArguments(0, '{"a":');
    fmt.finish('tool_calls');
    fmt.usage({ input: 1, output: 2, cache_read: 0, cache_write: 0, reasoning: 0 });
    const chunks = lines.map((l) => {
      expect(l).toMatch(/^data: .*\n\n$/s);
      return JSON.parse(l.slice(6));
    });
    expect(new Set(chunks.map((c) => `${c.id}${c.created}${c.model}`)).size).toBe(1);
    expect(chunks[1].choices[0].delta.content).toBe('he said "hi"\n');
    expect(chunks[4].choices[0].finish_reason).toBe('tool_calls');
    expect(chunks[5].choices).toEqual([]);
  });

  test('a non-streamed answer with only tool calls has null content; custom tools get custom tool calls', async () => {
    const acc = new CompletionAccumulator(new Set(['apply_patch']));
    const reader = new AnswerReader(acc);
    for await (const e of fromConverseStream(stream([...toolBlock(0, 't', 'f'), ...toolBlock(1, 'u', 'apply_patch', '{"input":"*** Begin Patch\\n"}'), { messageStop: { stopReason: 'tool_use' } }]))) reader.handle(e);
    const c = acc.completion({ id: 'x', created: 1, model: 'm' }, reader.complete(), { input: 1, output: 1, cache_read: 0, cache_write: 0, reasoning: 0 }, { text: (s) => s, json: (s) => s });
    expect(c.choices[0].message.content).toBeNull();
    expect(c.choices[0].message.tool_calls).toEqual([
      { id: 't', type: 'function', function: { name: 'f', arguments: '{}' } },
      { id: 'u', type: 'custom', custom: { name: 'apply_patch', input: '*** Begin Patch\n' } },
    ]);
  });
});
