import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import * as readline from 'node:readline';
import {
  BedrockClient,
  ListFoundationModelsCommand,
  ListInferenceProfilesCommand,
} from '@aws-sdk/client-bedrock';
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  ModelErrorException,
  ModelStreamErrorException,
  ResourceNotFoundException,
  ThrottlingException,
  ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import type {
  ConverseStreamCommandInput,
  ConverseStreamOutput,
  Message,
  Tool,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startBedrockStandIn } from '../../local/bedrock-standin';
import type { BedrockStandIn } from '../../local/bedrock-standin';

const MODEL_ID = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const DEFAULT_REPLY = 'Hello from the Bedrock stand-in.';
const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
const TOOLS: Tool[] = [
  { toolSpec: { name: 'get_weather', inputSchema: { json: { type: 'object' } } } },
  { toolSpec: { name: 'get_time', inputSchema: { json: { type: 'object' } } } },
];

const user = (text: string): Message => ({ role: 'user', content: [{ text }] });

interface Collected {
  events: ConverseStreamOutput[];
  error?: unknown;
}

const eventNames = (events: ConverseStreamOutput[]) => events.map((e) => Object.keys(e)[0]);
const textOf = (events: ConverseStreamOutput[]) => events.map((e) => e.contentBlockDelta?.delta?.text ?? '').join('');

/** The stand-in's scripted delays: each lasts until the test ends it (or the client goes away). */
interface Delay {
  ms: number;
  end(): void;
}
const delays: Delay[] = [];
let delayStarted: (() => void) | null = null;
const waitForTest = (ms: number, signal: AbortSignal) => new Promise<void>((end) => {
  signal.addEventListener('abort', () => end(), { once: true });
  delays.push({ ms, end });
  delayStarted?.();
});
/** Resolves with the next delay the stand-in starts. */
const nextDelay = () => new Promise<Delay>((resolve) => {
  const take = () => (delays.length ? resolve(delays.shift()!) : undefined);
  delayStarted = take;
  take();
});
/** `waited` (the stand-in pausing), failing if `answer` completes first: the pause was skipped. */
const pausedBefore = <T>(waited: Promise<T>, answer: Promise<unknown>) =>
  Promise.race([waited, answer.then(() => Promise.reject(new Error('answered without pausing')))]);

let standIn: BedrockStandIn;
beforeAll(async () => {
  standIn = await startBedrockStandIn({
    wait: waitForTest,
    controlPlane: {
      foundationModels: ['anthropic.claude-sonnet-4-5-20250929-v1:0', 'meta.llama3-8b-instruct-v1:0'],
      inferenceProfiles: ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'ca.anthropic.claude-haiku-4-5-20251001-v1:0', 'global.amazon.nova-2-lite-v1:0'],
    },
  });
});
afterAll(async () => {
  await standIn.close();
});

describe.each([
  ['HTTP/2 (default handler)', false],
  ['HTTP/1.1 keep-alive (NodeHttpHandler)', true],
])('Bedrock stand-in over %s', (_label, useHttp1) => {
  let client: BedrockRuntimeClient;
  beforeAll(() => {
    client = new BedrockRuntimeClient({
      endpoint: standIn.url,
      region: 'ca-central-1',
      credentials,
      maxAttempts: 1,
      ...(useHttp1 ? { requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true }) }) } : {}),
    });
  });
  afterAll(() => client.destroy());
  beforeEach(() => standIn.reset());

  async function collect(input: Partial<ConverseStreamCommandInput>, signal?: AbortSignal, onEvent = () => {}): Promise<Collected> {
    const events: ConverseStreamOutput[] = [];
    try {
      const out = await client.send(
        new ConverseStreamCommand({ modelId: MODEL_ID, messages: [user('hi')], ...input }),
        { abortSignal: signal },
      );
      for await (const event of out.stream ?? []) {
        events.push(event);
        onEvent();
      }
      return { events };
    } catch (error) {
      return { events, error };
    }
  }

  test('default reply streams word deltas in the real event order', async () => {
    const { events, error } = await collect({ messages: [user('Hi there')] });
    expect(error).toBeUndefined();
    const names = eventNames(events);
    expect(names[0]).toBe('messageStart');
    expect(names.slice(-3)).toEqual(['contentBlockStop', 'messageStop', 'metadata']);
    // Like real Bedrock, text blocks have no contentBlockStart.
    expect(names.filter((n) => n === 'contentBlockDelta').length).toBe(DEFAULT_REPLY.split(' ').length);
    expect(names).not.toContain('contentBlockStart');
    expect(events[0].messageStart).toEqual({ role: 'assistant' });
    expect(textOf(events)).toBe(DEFAULT_REPLY);
    expect(events.at(-2)?.messageStop?.stopReason).toBe('end_turn');
  });

  test('echo with chunk=1 is byte-exact and splits by code point', async () => {
    const text = 'ni-standin:echo ni-standin:chunk=1 héllo 👋🏽 wörld 🇨🇦!';
    const { events, error } = await collect({ messages: [user(text)] });
    expect(error).toBeUndefined();
    const deltas = events.flatMap((e) => (e.contentBlockDelta ? [e.contentBlockDelta.delta?.text ?? ''] : []));
    expect(deltas.join('')).toBe(text);
    expect(deltas).toEqual(Array.from(text));
    expect(deltas).toContain('👋');
  });

  test('echo concatenates every text block of the last user message in chunks of 16', async () => {
    const blocks = ['first block ni-standin:echo ', 'second block with more text'];
    const { events } = await collect({
      messages: [user('earlier turn'), { role: 'assistant', content: [{ text: 'ok' }] }, { role: 'user', content: blocks.map((text) => ({ text })) }],
    });
    const deltas = events.flatMap((e) => (e.contentBlockDelta ? [e.contentBlockDelta.delta?.text ?? ''] : []));
    expect(deltas.join('')).toBe(blocks.join(''));
    expect(deltas.every((d) => Array.from(d).length <= 16)).toBe(true);
    expect(deltas.length).toBe(Math.ceil(blocks.join('').length / 16));
  });

  test('words=N yields N deterministic words; maxTokens truncates with max_tokens', async () => {
    const full = await collect({ messages: [user('ni-standin:words=40')] });
    expect(textOf(full.events).split(' ')).toHaveLength(40);
    const again = await collect({ messages: [user('ni-standin:words=40')] });
    expect(textOf(again.events)).toBe(textOf(full.events));

    const cut = await collect({ messages: [user('ni-standin:words=40')], inferenceConfig: { maxTokens: 3 } });
    expect(textOf(cut.events)).toBe(textOf(full.events).split(' ').slice(0, 3).join(' '));
    expect(cut.events.find((e) => e.messageStop)?.messageStop?.stopReason).toBe('max_tokens');
  });

  test('parallel tool calls cycle through the tools and their JSON inputs reassemble', async () => {
    const text = 'Weather and time please ni-standin:tool_calls=3';
    const { events, error } = await collect({ messages: [user(text)], toolConfig: { tools: TOOLS } });
    expect(error).toBeUndefined();
    const starts = events.flatMap((e) => (e.contentBlockStart ? [e.contentBlockStart] : []));
    expect(starts.map((s) => s.start?.toolUse?.name)).toEqual(['get_weather', 'get_time', 'get_weather']);
    expect(starts.map((s) => s.contentBlockIndex)).toEqual([0, 1, 2]);
    const ids = starts.map((s) => s.start?.toolUse?.toolUseId ?? '');
    expect(new Set(ids).size).toBe(3);
    ids.forEach((id) => expect(id).toMatch(/^tooluse_[\w-]{22}$/));

    for (const index of [0, 1, 2]) {
      const fragments = events.flatMap((e) =>
        e.contentBlockDelta?.contentBlockIndex === index ? [e.contentBlockDelta.delta?.toolUse?.input ?? ''] : [],
      );
      expect(fragments.length).toBeGreaterThan(1);
      expect(JSON.parse(fragments.join(''))).toEqual({ text });
    }
    expect(events.find((e) => e.messageStop)?.messageStop?.stopReason).toBe('tool_use');

    const repeat = await collect({ messages: [user(text)], toolConfig: { tools: TOOLS } });
    expect(repeat.events.flatMap((e) => (e.contentBlockStart ? [e.contentBlockStart.start?.toolUse?.toolUseId] : []))).toEqual(ids);
  });

  test('toolChoice {tool} forces that tool; preamble adds a leading text block', async () => {
    const { events } = await collect({
      messages: [user('go ni-standin:preamble ni-standin:tool_calls=2')],
      toolConfig: { tools: TOOLS, toolChoice: { tool: { name: 'get_time' } } },
    });
    expect(events.filter((e) => e.contentBlockDelta?.contentBlockIndex === 0).every((e) => e.contentBlockDelta?.delta?.text)).toBe(true);
    const starts = events.flatMap((e) => (e.contentBlockStart ? [e.contentBlockStart] : []));
    expect(starts.map((s) => [s.contentBlockIndex, s.start?.toolUse?.name])).toEqual([
      [1, 'get_time'],
      [2, 'get_time'],
    ]);
  });

  test('toolChoice any calls one tool; auto without a directive answers in text', async () => {
    const any = await collect({ messages: [user('hi')], toolConfig: { tools: TOOLS, toolChoice: { any: {} } } });
    expect(any.events.filter((e) => e.contentBlockStart)).toHaveLength(1);
    const auto = await collect({ messages: [user('hi')], toolConfig: { tools: TOOLS, toolChoice: { auto: {} } } });
    expect(textOf(auto.events)).toBe(DEFAULT_REPLY);
  });

  test('toolResult blocks are summarised in a text reply', async () => {
    const { events } = await collect({
      messages: [
        user('weather? ni-standin:tool_calls=2'),
        {
          role: 'assistant',
          content: [
            { toolUse: { toolUseId: 'tooluse_a', name: 'get_weather', input: { city: 'Ottawa' } } },
            { toolUse: { toolUseId: 'tooluse_b', name: 'get_time', input: {} } },
          ],
        },
        {
          role: 'user',
          content: [
            { toolResult: { toolUseId: 'tooluse_a', content: [{ text: 'sunny' }] } },
            { toolResult: { toolUseId: 'tooluse_b', content: [{ json: { hour: 9 } }] } },
          ],
        },
      ],
      toolConfig: { tools: TOOLS },
    });
    expect(textOf(events)).toBe('Tool results: sunny | {"hour":9}');
    expect(events.find((e) => e.messageStop)?.messageStop?.stopReason).toBe('end_turn');
  });

  test('usage follows the documented estimate and reports cache tokens', async () => {
    const system = 'You are terse.';
    const text = 'ni-standin:cache_read=7 ni-standin:cache_write=5';
    const { events } = await collect({ system: [{ text: system }], messages: [user(text)] });
    const inputTokens = Math.ceil((system.length + text.length) / 4);
    const outputTokens = Math.ceil(DEFAULT_REPLY.length / 4);
    expect(events.at(-1)?.metadata?.usage).toEqual({
      inputTokens,
      outputTokens,
      totalTokens: inputTokens + outputTokens + 12,
      cacheReadInputTokens: 7,
      cacheWriteInputTokens: 5,
    });
    expect(events.at(-1)?.metadata?.metrics).toEqual({ latencyMs: 0 });
  });

  test('directives in the system prompt apply; stop forces the stop reason', async () => {
    const { events } = await collect({ system: [{ text: 'ni-standin:stop=content_filtered' }] });
    expect(events.find((e) => e.messageStop)?.messageStop?.stopReason).toBe('content_filtered');
  });

  test('throttle=always maps to ThrottlingException; throttle=K lets identical call K+1 through', async () => {
    const always = await collect({ messages: [user('ni-standin:throttle=always')] });
    expect(always.error).toBeInstanceOf(ThrottlingException);
    expect((always.error as ThrottlingException).$metadata.httpStatusCode).toBe(429);

    const input = { messages: [user('retry me ni-standin:throttle=2')] };
    expect((await collect(input)).error).toBeInstanceOf(ThrottlingException);
    expect((await collect(input)).error).toBeInstanceOf(ThrottlingException);
    expect(textOf((await collect(input)).events)).toBe(DEFAULT_REPLY);
    expect((await collect({ messages: [user('other body ni-standin:throttle=2')] })).error).toBeInstanceOf(ThrottlingException);
  });

  test('validation_error, unknown directives and not_found map to named exceptions', async () => {
    const invalid = await collect({ messages: [user('ni-standin:validation_error')] });
    expect(invalid.error).toBeInstanceOf(ValidationException);
    expect((invalid.error as Error).message).toMatch(/validation/i);
    expect((await collect({ messages: [user('ni-standin:bogus')] })).error).toBeInstanceOf(ValidationException);
    expect((await collect({ messages: [user('ni-standin:words=lots')] })).error).toBeInstanceOf(ValidationException);
    expect((await collect({ messages: [user('ni-standin:not_found')] })).error).toBeInstanceOf(ResourceNotFoundException);
  });

  test('fail_mid_stream throws a modeled exception after some deltas', async () => {
    const { events, error } = await collect({ messages: [user('ni-standin:fail_mid_stream ni-standin:words=10')] });
    expect(error).toBeInstanceOf(ModelStreamErrorException);
    expect(events.filter((e) => e.contentBlockDelta)).toHaveLength(5);
    expect(eventNames(events)).not.toContain('messageStop');

    const throttled = await collect({ messages: [user('ni-standin:fail_mid_stream=throttling')] });
    expect(throttled.error).toBeInstanceOf(ThrottlingException);
    expect(throttled.events.length).toBeGreaterThan(1);
  });

  test('truncate ends the stream cleanly without messageStop or metadata', async () => {
    const { events, error } = await collect({ messages: [user('ni-standin:truncate ni-standin:words=8')] });
    expect(error).toBeUndefined();
    expect(eventNames(events)).toEqual(['messageStart', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockDelta']);
  });

  test('slow_first_token: that long before the first event, and nothing before', async () => {
    let delayOver = false;
    const arrivedAfterDelay: boolean[] = [];
    const collecting = collect({ messages: [user('ni-standin:slow_first_token=150')] }, undefined, () => arrivedAfterDelay.push(delayOver));
    const delay = await pausedBefore(nextDelay(), collecting);
    expect(delay.ms).toBe(150);
    delayOver = true;
    delay.end();
    const { events, error } = await collecting;
    expect(error).toBeUndefined();
    expect(arrivedAfterDelay.length).toBe(events.length);
    expect(arrivedAfterDelay.every(Boolean)).toBe(true);
    expect(textOf(events)).toBe(DEFAULT_REPLY);
    expect(events.at(-1)?.metadata?.metrics?.latencyMs).toBe(150);
  });

  test('delay_between: that long between consecutive deltas', async () => {
    const collecting = collect({ messages: [user('ni-standin:delay_between=50 ni-standin:words=3')] });
    for (let i = 0; i < 2; i++) {
      const delay = await pausedBefore(nextDelay(), collecting);
      expect(delay.ms).toBe(50);
      delay.end();
    }
    const { events } = await collecting;
    expect(events.filter((e) => e.contentBlockDelta)).toHaveLength(3);
    expect(events.at(-1)?.metadata?.metrics?.latencyMs).toBe(100);
  });

  test('hold: the first delta, then nothing until release()', async () => {
    let released = false;
    const arrivedAfterRelease: boolean[] = [];
    const collecting = collect({ messages: [user('ni-standin:hold ni-standin:words=5')] }, undefined, () => arrivedAfterRelease.push(released));
    await pausedBefore(standIn.held(), collecting);
    released = true;
    standIn.release();
    const { events, error } = await collecting;
    expect(error).toBeUndefined();
    expect(eventNames(events).slice(0, 2)).toEqual(['messageStart', 'contentBlockDelta']);
    // What was sent before the hold may arrive before or after the release; nothing after it came earlier.
    expect(arrivedAfterRelease.slice(2).every(Boolean)).toBe(true);
    expect(events.filter((e) => e.contentBlockDelta)).toHaveLength(5);
    expect(standIn.requests[0].aborted).toBe(false);
  });

  test('hold on Converse: no answer until release()', async () => {
    let released = false;
    const answered = client.send(new ConverseCommand({ modelId: MODEL_ID, messages: [user('ni-standin:hold')] })).then((out) => ({ out, released }));
    await pausedBefore(standIn.held(), answered);
    released = true;
    standIn.release();
    const { out, released: afterRelease } = await answered;
    expect(afterRelease).toBe(true);
    expect(out.output?.message?.content?.[0]?.text).toBe(DEFAULT_REPLY);
  });

  test('a client abort during a hold is recorded on the request', async () => {
    const abort = new AbortController();
    const events: ConverseStreamOutput[] = [];
    const out = await client.send(
      new ConverseStreamCommand({ modelId: MODEL_ID, messages: [user('ni-standin:hold ni-standin:words=100')] }),
      { abortSignal: abort.signal },
    );
    // The HTTP/1 handler rejects the iterator on abort, the HTTP/2 one just ends it: either way it stops.
    try {
      for await (const event of out.stream ?? []) {
        events.push(event);
        if (event.contentBlockDelta) abort.abort();
      }
    } catch {
      // expected for HTTP/1
    }
    expect(events.filter((e) => e.contentBlockDelta)).toHaveLength(1);
    await standIn.idle(); // the call ends once the stand-in has seen the client go
    expect(standIn.requests[0].aborted).toBe(true);
  });

  test('records requests with decoded model id and the JSON body as sent', async () => {
    await collect({ messages: [user('record me')], inferenceConfig: { maxTokens: 50 } });
    await client.send(new ConverseCommand({ modelId: MODEL_ID, messages: [user('and me')] }));
    expect(standIn.requests).toHaveLength(2);
    const [stream, plain] = standIn.requests;
    expect(stream).toMatchObject({
      path: `/model/${encodeURIComponent(MODEL_ID)}/converse-stream`,
      modelId: MODEL_ID,
      operation: 'ConverseStream',
      body: { messages: [user('record me')], inferenceConfig: { maxTokens: 50 } },
      aborted: false,
    });
    expect(JSON.parse(stream.raw)).toEqual(stream.body);
    expect(plain).toMatchObject({ operation: 'Converse', body: { messages: [user('and me')] } });
  });

  test('Converse returns the equivalent JSON reply', async () => {
    const text = await client.send(new ConverseCommand({ modelId: MODEL_ID, messages: [user('ni-standin:echo exact')] }));
    expect(text.output?.message).toEqual({ role: 'assistant', content: [{ text: 'ni-standin:echo exact' }] });
    expect(text.stopReason).toBe('end_turn');
    expect(text.usage?.outputTokens).toBe(Math.ceil('ni-standin:echo exact'.length / 4));
    expect(text.metrics).toEqual({ latencyMs: 0 });

    const tools = await client.send(
      new ConverseCommand({ modelId: MODEL_ID, messages: [user('ni-standin:tool_calls=2')], toolConfig: { tools: TOOLS } }),
    );
    expect(tools.stopReason).toBe('tool_use');
    expect(tools.output?.message?.content?.map((c) => [c.toolUse?.name, c.toolUse?.input])).toEqual([
      ['get_weather', { text: 'ni-standin:tool_calls=2' }],
      ['get_time', { text: 'ni-standin:tool_calls=2' }],
    ]);

    await expect(
      client.send(new ConverseCommand({ modelId: MODEL_ID, messages: [user('ni-standin:fail_mid_stream')] })),
    ).rejects.toBeInstanceOf(ModelErrorException);
  });
});

describe('control plane and transport details', () => {
  test('ListFoundationModels and ListInferenceProfiles via @aws-sdk/client-bedrock', async () => {
    const client = new BedrockClient({ endpoint: standIn.url, region: 'ca-central-1', credentials, maxAttempts: 1 });
    try {
      const models = await client.send(new ListFoundationModelsCommand({}));
      expect(models.modelSummaries?.map((m) => [m.modelId, m.providerName, m.modelArn])).toEqual([
        ['anthropic.claude-sonnet-4-5-20250929-v1:0', 'Anthropic', 'arn:aws:bedrock:ca-central-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0'],
        ['meta.llama3-8b-instruct-v1:0', 'Meta', 'arn:aws:bedrock:ca-central-1::foundation-model/meta.llama3-8b-instruct-v1:0'],
      ]);
      expect(models.modelSummaries?.[0].inferenceTypesSupported).toEqual(['ON_DEMAND']);
      const meta = await client.send(new ListFoundationModelsCommand({ byProvider: 'meta' }));
      expect(meta.modelSummaries?.map((m) => m.modelId)).toEqual(['meta.llama3-8b-instruct-v1:0']);

      const first = await client.send(new ListInferenceProfilesCommand({ maxResults: 2 }));
      expect(first.inferenceProfileSummaries?.map((p) => p.inferenceProfileId)).toEqual([
        'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
        'ca.anthropic.claude-haiku-4-5-20251001-v1:0',
      ]);
      expect(first.inferenceProfileSummaries?.[1]).toMatchObject({
        status: 'ACTIVE',
        type: 'SYSTEM_DEFINED',
        inferenceProfileArn: expect.stringMatching(/^arn:aws:bedrock:ca-central-1:\d{12}:inference-profile\/ca\.anthropic\./),
        models: [{ modelArn: 'arn:aws:bedrock:ca-central-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0' }],
      });
      const rest = await client.send(new ListInferenceProfilesCommand({ maxResults: 2, nextToken: first.nextToken }));
      expect(rest.inferenceProfileSummaries?.map((p) => p.inferenceProfileId)).toEqual(['global.amazon.nova-2-lite-v1:0']);
      expect(rest.nextToken).toBeUndefined();
    } finally {
      client.destroy();
    }
  });

  test('every response is marked x-ni-simulated, errors carry x-amzn-errortype', async () => {
    const list = await fetch(`${standIn.url}/foundation-models`);
    expect(list.headers.get('x-ni-simulated')).toBe('true');
    const unknown = await fetch(`${standIn.url}/nope`, { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-ni-simulated')).toBe('true');
    expect(unknown.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
  });

  test('recordLimit bounds the request ring', async () => {
    const small = await startBedrockStandIn({ recordLimit: 2 });
    const client = new BedrockRuntimeClient({ endpoint: small.url, region: 'ca-central-1', credentials });
    try {
      for (const text of ['one', 'two', 'three']) {
        await client.send(new ConverseCommand({ modelId: MODEL_ID, messages: [user(text)] }));
      }
      expect(small.requests.map((r) => r.body.messages[0].content[0].text)).toEqual(['two', 'three']);
    } finally {
      client.destroy();
      await small.close();
    }
  });

  test('runs as a script that prints its URL as one JSON line', async () => {
    const script = path.join(__dirname, '../../local/bedrock-standin.ts');
    const child = spawn(process.execPath, [require.resolve('tsx/cli'), script, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = await readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value as string]);
      const { url } = JSON.parse(line) as { url: string };
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/inference-profiles`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
