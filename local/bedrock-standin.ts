/**
 * Local Bedrock stand-in: a loopback server speaking the real Amazon Bedrock wire protocol so the real
 * `@aws-sdk/client-bedrock-runtime` (Converse / ConverseStream) and `@aws-sdk/client-bedrock`
 * (ListFoundationModels / ListInferenceProfiles) clients work against it without AWS.
 *
 * HTTP/2 cleartext (prior knowledge, the SDK's default NodeHttp2Handler) and HTTP/1.1 keep-alive
 * (NodeHttpHandler) are served on the same port by sniffing the connection preface.
 *
 * Behaviour is deterministic and scripted by `ni-standin:NAME[=VALUE]` tokens in the text blocks of the
 * last user message or in the system blocks. Unknown directives and bad values are rejected with a
 * ValidationException so a typo never silently changes what a test exercises.
 *   (none)                  "Hello from the Bedrock stand-in." in word deltas
 *   echo                    the last user message's text blocks, concatenated, byte-exact
 *   chunk=N                 deltas of N code points (echo and tool inputs default to 16)
 *   words=N                 N deterministic words
 *   tool_calls=N            with toolConfig: N toolUse blocks cycling through the tools (toolChoice
 *                           any/tool alone gives 1), input {"text": last user text}, stop tool_use
 *   preamble                a short text block before the tool calls
 *   stop=REASON             force the stop reason (max_tokens|stop_sequence|content_filtered|...)
 *   throttle=K|always       429 ThrottlingException for the first K identical calls (path + body)
 *   unavailable=K|always    same with 503 ServiceUnavailableException
 *   validation_error        400 ValidationException
 *   not_found               404 ResourceNotFoundException
 *   fail_mid_stream[=KIND]  half the deltas then an exception message; KIND = model (default,
 *                           modelStreamErrorException) | internal | throttling | unavailable | validation
 *   truncate                half the deltas then a clean end without contentBlockStop/messageStop/metadata
 *   slow_first_token=MS     headers at once, then MS of silence before the first event
 *   delay_between=MS        MS between consecutive deltas
 *   hold                    streams: nothing after the first delta, Converse: no answer, until the test calls
 *                           release() or the client goes away (a test's cue instead of a race with the clock)
 *   cache_read=N, cache_write=N   reported in usage
 * A last user message with toolResult blocks gets "Tool results: " + their text/JSON joined by " | ".
 * inferenceConfig.maxTokens below the reply's word count truncates it with stop reason max_tokens.
 *
 * Usage estimate: inputTokens = ceil(chars / 4) over every `text` string in system + messages plus the
 * JSON of toolUse inputs and toolResult json contents (chars = UTF-16 code units); outputTokens =
 * max(1, ceil(output chars / 4)) over reply text and tool-input JSON; totalTokens includes cache tokens.
 *
 * Converse (non-streaming) maps `fail_mid_stream` to the equivalent operation error (e.g. 424
 * ModelErrorException), ignores `truncate` and `delay_between`, and honours `slow_first_token` as a delay
 * before the whole response.
 *
 * Script: `npx tsx local/bedrock-standin.ts [--port N] [--host H] [--region R] [--verbose]` prints
 * `{"url": ...}` on stdout and stays up until SIGINT/SIGTERM.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import type { MessageHeaders } from '@smithy/eventstream-codec';

export interface StandInOptions {
  port?: number;
  host?: string;
  /** Region used in control-plane ARNs. Default ca-central-1. */
  region?: string;
  /** Default true; set false to log one line per request to stderr. */
  quiet?: boolean;
  controlPlane?: { foundationModels: string[]; inferenceProfiles: string[] };
  /** Bounded ring of recorded model requests; 0 disables recording. Default 1000. */
  recordLimit?: number;
  /**
   * How the scripted delays (slow_first_token, delay_between) are waited out; resolves when they are over or
   * `signal` aborts. Default: timers. A test passes its own to end them when it chooses.
   */
  wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface RecordedRequest {
  path: string;
  modelId: string;
  operation: 'ConverseStream' | 'Converse';
  /** Parsed JSON exactly as received (null if it was not JSON). */
  body: any;
  raw: string;
  /** True when the client went away before the response was complete (cancellation tests). */
  aborted: boolean;
}

export interface BedrockStandIn {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Clears recorded requests (in place) and throttle counters. */
  reset(): void;
  /** Resolves once a call is waiting at its `hold` (at once if one is). */
  held(): Promise<void>;
  /** Lets every call waiting at its `hold` go on. */
  release(): void;
  /** Resolves once no request is being answered (at once if none is). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors

const ERROR_STATUS = {
  ValidationException: 400,
  ResourceNotFoundException: 404,
  UnknownOperationException: 404,
  ModelErrorException: 424,
  ThrottlingException: 429,
  InternalServerException: 500,
  ServiceUnavailableException: 503,
} as const;
type ErrorType = keyof typeof ERROR_STATUS;

class ApiError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
  }
}

/** `fail_mid_stream=VALUE`: the in-stream exception and the equivalent error for non-streaming Converse. */
const FAULTS = {
  model: { exceptionType: 'modelStreamErrorException', converseError: 'ModelErrorException' },
  internal: { exceptionType: 'internalServerException', converseError: 'InternalServerException' },
  throttling: { exceptionType: 'throttlingException', converseError: 'ThrottlingException' },
  unavailable: { exceptionType: 'serviceUnavailableException', converseError: 'ServiceUnavailableException' },
  validation: { exceptionType: 'validationException', converseError: 'ValidationException' },
} as const satisfies Record<string, { exceptionType: string; converseError: ErrorType }>;
type Fault = keyof typeof FAULTS;

// ---------------------------------------------------------------------------------------------
// Directives

const STOP_REASONS = [
  'end_turn',
  'tool_use',
  'max_tokens',
  'stop_sequence',
  'content_filtered',
  'guardrail_intervened',
] as const;
type StopReason = (typeof STOP_REASONS)[number];

interface Script {
  echo: boolean;
  words?: number;
  chunk?: number;
  toolCalls?: number;
  preamble: boolean;
  stop?: StopReason;
  /** Number of identical calls to reject first; Infinity = always. */
  throttle?: number;
  unavailable?: number;
  validationError: boolean;
  notFound: boolean;
  failMidStream?: Fault;
  truncate: boolean;
  slowFirstTokenMs: number;
  delayBetweenMs: number;
  hold: boolean;
  cacheRead: number;
  cacheWrite: number;
}

function intValue(name: string, value: string | undefined, min: number): number {
  const n = value !== undefined && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min)) throw new ApiError('ValidationException', `ni-standin:${name} needs an integer >= ${min}`);
  return n;
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new ApiError('ValidationException', `ni-standin:${name} must be one of ${allowed.join('|')}`);
  }
  return value as T;
}

function countOrAlways(name: string, value: string | undefined): number {
  return value === 'always' ? Infinity : intValue(name, value, 1);
}

/** Each directive yields the Script fields it sets; bad values throw a ValidationException. */
const DIRECTIVES = new Map<string, (value: string | undefined) => Partial<Script>>([
  ['echo', () => ({ echo: true })],
  ['preamble', () => ({ preamble: true })],
  ['truncate', () => ({ truncate: true })],
  ['validation_error', () => ({ validationError: true })],
  ['not_found', () => ({ notFound: true })],
  ['words', (v) => ({ words: intValue('words', v, 0) })],
  ['chunk', (v) => ({ chunk: intValue('chunk', v, 1) })],
  ['tool_calls', (v) => ({ toolCalls: intValue('tool_calls', v, 1) })],
  ['stop', (v) => ({ stop: oneOf('stop', v, STOP_REASONS) })],
  ['throttle', (v) => ({ throttle: countOrAlways('throttle', v) })],
  ['unavailable', (v) => ({ unavailable: countOrAlways('unavailable', v) })],
  ['fail_mid_stream', (v) => ({ failMidStream: oneOf('fail_mid_stream', v ?? 'model', Object.keys(FAULTS) as Fault[]) })],
  ['slow_first_token', (v) => ({ slowFirstTokenMs: intValue('slow_first_token', v, 0) })],
  ['delay_between', (v) => ({ delayBetweenMs: intValue('delay_between', v, 0) })],
  ['hold', () => ({ hold: true })],
  ['cache_read', (v) => ({ cacheRead: intValue('cache_read', v, 0) })],
  ['cache_write', (v) => ({ cacheWrite: intValue('cache_write', v, 0) })],
]);

const DIRECTIVE_RE = /ni-standin:([a-z_]+)(?:=([A-Za-z0-9_]+))?/g;

function parseScript(texts: string[]): Script {
  const script: Script = {
    echo: false,
    preamble: false,
    validationError: false,
    notFound: false,
    truncate: false,
    slowFirstTokenMs: 0,
    delayBetweenMs: 0,
    hold: false,
    cacheRead: 0,
    cacheWrite: 0,
  };
  for (const text of texts) {
    if (!text.includes('ni-standin:')) continue;
    for (const [, name, value] of text.matchAll(DIRECTIVE_RE)) {
      const directive = DIRECTIVES.get(name);
      if (!directive) throw new ApiError('ValidationException', `unknown directive ni-standin:${name}`);
      Object.assign(script, directive(value));
    }
  }
  return script;
}

// ---------------------------------------------------------------------------------------------
// Request shape (only what the stand-in reads; the body is untrusted JSON)

interface ContentBlock {
  text?: unknown;
  toolResult?: { content?: Array<{ text?: unknown; json?: unknown }> };
}
interface ConverseBody {
  messages?: Array<{ role?: unknown; content?: ContentBlock[] }>;
  system?: ContentBlock[];
  toolConfig?: {
    tools?: Array<{ toolSpec?: { name?: unknown } }>;
    toolChoice?: { any?: object; auto?: object; tool?: { name?: unknown } };
  };
  inferenceConfig?: { maxTokens?: unknown };
}

const asArray = <T>(v: T[] | undefined): T[] => (Array.isArray(v) ? v : []);

function textsOf(blocks: ContentBlock[] | undefined): string[] {
  return asArray(blocks).flatMap((b) => (typeof b?.text === 'string' ? [b.text] : []));
}

function lastUserContent(body: ConverseBody): ContentBlock[] {
  const messages = asArray(body.messages);
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') return asArray(messages[i].content);
  }
  throw new ApiError('ValidationException', 'A conversation must contain a user message.');
}

/** Characters counted for the input-token estimate (see the file comment). */
function promptChars(body: ConverseBody): number {
  let chars = 0;
  const visit = (value: unknown, key: string): void => {
    if (typeof value === 'string') {
      if (key === 'text') chars += value.length;
    } else if (value !== null && typeof value === 'object') {
      if (key === 'input' || key === 'json') chars += JSON.stringify(value).length;
      else for (const [k, v] of Object.entries(value)) visit(v, k);
    }
  };
  visit(body.system, 'system');
  visit(body.messages, 'messages');
  return chars;
}

// ---------------------------------------------------------------------------------------------
// Reply planning

interface TextOut {
  kind: 'text';
  text: string;
  deltas: string[];
}
interface ToolOut {
  kind: 'toolUse';
  toolUseId: string;
  name: string;
  input: { text: string };
  deltas: string[];
}
type OutBlock = TextOut | ToolOut;

interface Usage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  cacheReadInputTokens: number;
  cacheWriteInputTokens: number;
}

interface Plan {
  script: Script;
  blocks: OutBlock[];
  stopReason: StopReason;
  usage: Usage;
  latencyMs: number;
}

const DEFAULT_REPLY = 'Hello from the Bedrock stand-in.';
const PREAMBLE = 'Let me use the tools for that.';
const DEFAULT_ECHO_CHUNK = 16;
const WORDS = 'alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu'.split(' ');

function chunkCodePoints(text: string, size: number): string[] {
  const points = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < points.length; i += size) out.push(points.slice(i, i + size).join(''));
  return out;
}

/** Word-boundary deltas: each piece is a word with its leading whitespace; trailing space stays on the last. */
function splitWords(text: string): string[] {
  return text.match(/\s*\S+\s*$|\s*\S+/g) ?? (text ? [text] : []);
}

function textOut(text: string, chunk: number | undefined): TextOut {
  return { kind: 'text', text, deltas: chunk ? chunkCodePoints(text, chunk) : splitWords(text) };
}

/** The prefix holding the first `max` words, or undefined when the text has no more than `max` words. */
function truncateToWords(text: string, max: number): string | undefined {
  const re = /\S+/g;
  let end = 0;
  for (let count = 0, m = re.exec(text); m; m = re.exec(text)) {
    if (count++ === max) return text.slice(0, end);
    end = m.index + m[0].length;
  }
  return undefined;
}

function toolResultsText(content: ContentBlock[]): string | undefined {
  const results = content.filter((b) => b?.toolResult);
  if (results.length === 0) return undefined;
  const parts = results.flatMap((b) =>
    asArray(b.toolResult?.content).flatMap((c) => {
      if (typeof c?.text === 'string') return [c.text];
      return c?.json !== undefined ? [JSON.stringify(c.json)] : [];
    }),
  );
  return 'Tool results: ' + parts.join(' | ');
}

function toolNames(body: ConverseBody): string[] {
  const forced = body.toolConfig?.toolChoice?.tool?.name;
  if (typeof forced === 'string') return [forced];
  const names = asArray(body.toolConfig?.tools).flatMap((t) =>
    typeof t?.toolSpec?.name === 'string' ? [t.toolSpec.name] : [],
  );
  if (names.length === 0) throw new ApiError('ValidationException', 'toolConfig.tools has no toolSpec.');
  return names;
}

function toolCallCount(body: ConverseBody, script: Script, userText: string): number {
  if (!body.toolConfig || userText === '') return 0;
  if (script.toolCalls !== undefined) return script.toolCalls;
  const choice = body.toolConfig.toolChoice;
  return choice?.any || choice?.tool ? 1 : 0;
}

function toolOut(name: string, index: number, userText: string, chunk: number): ToolOut {
  const input = { text: userText };
  const hash = createHash('sha256').update(`${index}\0${name}\0${userText}`).digest('base64url');
  return {
    kind: 'toolUse',
    toolUseId: `tooluse_${hash.slice(0, 22)}`,
    name,
    input,
    deltas: chunkCodePoints(JSON.stringify(input), chunk),
  };
}

function wordsText(n: number): string {
  return Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]).join(' ');
}

function planReply(body: ConverseBody, script: Script): Plan {
  const content = lastUserContent(body);
  const userText = textsOf(content).join('');
  const blocks: OutBlock[] = [];
  let stopReason: StopReason = 'end_turn';

  const resultsText = toolResultsText(content);
  const calls = resultsText === undefined ? toolCallCount(body, script, userText) : 0;
  if (calls > 0) {
    const names = toolNames(body);
    if (script.preamble) blocks.push(textOut(PREAMBLE, script.chunk));
    for (let i = 0; i < calls; i++) {
      blocks.push(toolOut(names[i % names.length], i, userText, script.chunk ?? DEFAULT_ECHO_CHUNK));
    }
    stopReason = 'tool_use';
  } else {
    let text = resultsText ?? (script.echo ? userText : script.words !== undefined ? wordsText(script.words) : DEFAULT_REPLY);
    const maxTokens = body.inferenceConfig?.maxTokens;
    const truncated = typeof maxTokens === 'number' && maxTokens >= 1 ? truncateToWords(text, maxTokens) : undefined;
    if (truncated !== undefined) {
      text = truncated;
      stopReason = 'max_tokens';
    }
    blocks.push(textOut(text, script.chunk ?? (script.echo ? DEFAULT_ECHO_CHUNK : undefined)));
  }

  const outChars = blocks.reduce((n, b) => n + (b.kind === 'text' ? b.text.length : JSON.stringify(b.input).length), 0);
  const inputTokens = Math.ceil(promptChars(body) / 4);
  const outputTokens = Math.max(1, Math.ceil(outChars / 4));
  const deltaCount = blocks.reduce((n, b) => n + b.deltas.length, 0);
  return {
    script,
    blocks,
    stopReason: script.stop ?? stopReason,
    usage: {
      inputTokens,
      outputTokens,
      totalTokens: inputTokens + outputTokens + script.cacheRead + script.cacheWrite,
      cacheReadInputTokens: script.cacheRead,
      cacheWriteInputTokens: script.cacheWrite,
    },
    // Deterministic: the scripted delays rather than wall-clock time.
    latencyMs: script.slowFirstTokenMs + script.delayBetweenMs * Math.max(0, deltaCount - 1),
  };
}

// ---------------------------------------------------------------------------------------------
// Wire encoding

const fromUtf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const toUtf8 = (input: Uint8Array | string): string =>
  typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
const codec = new EventStreamCodec(toUtf8, fromUtf8);

const stringHeader = (value: string) => ({ type: 'string' as const, value });
const headerCache = new Map<string, { raw: MessageHeaders; bytes: Uint8Array }>();

/** Message headers, formatted once per (message type, event type) by the SDK's own marshaller. */
function messageHeaders(messageType: 'event' | 'exception', type: string): { raw: MessageHeaders; bytes: Uint8Array } {
  const key = `${messageType}:${type}`;
  let headers = headerCache.get(key);
  if (!headers) {
    const raw = {
      [messageType === 'event' ? ':event-type' : ':exception-type']: stringHeader(type),
      ':content-type': stringHeader('application/json'),
      ':message-type': stringHeader(messageType),
    };
    headers = { raw, bytes: codec.formatHeaders(raw) };
    headerCache.set(key, headers);
  }
  return headers;
}

/**
 * One event-stream message: prelude (total length, headers length, prelude CRC), headers, payload and a
 * CRC over everything before it. This is EventStreamCodec.encode with the header block precomputed,
 * since formatting headers per message dominated the stand-in's CPU profile; without zlib.crc32
 * (Node < 20.15) it falls back to the codec.
 * The SDK reads each payload as the JSON of the union member's structure (e.g. MessageStartEvent).
 */
function encodeMessage(messageType: 'event' | 'exception', type: string, payload: object): Uint8Array {
  const { raw, bytes: headers } = messageHeaders(messageType, type);
  const body = Buffer.from(JSON.stringify(payload));
  if (typeof zlib.crc32 !== 'function') return codec.encode({ headers: raw, body });
  const length = 16 + headers.length + body.length;
  const out = Buffer.allocUnsafe(length);
  out.writeUInt32BE(length, 0);
  out.writeUInt32BE(headers.length, 4);
  out.writeUInt32BE(zlib.crc32(out.subarray(0, 8)), 8);
  out.set(headers, 12);
  out.set(body, 12 + headers.length);
  out.writeUInt32BE(zlib.crc32(out.subarray(0, length - 4)), length - 4);
  return out;
}

interface Frame {
  bytes: Uint8Array;
  /** Content deltas and faults are paced by delay_between; structural frames ride along with them. */
  paced: boolean;
}

function blockFrames(block: OutBlock, index: number): Frame[] {
  const frames: Frame[] = [];
  // Real Bedrock sends contentBlockStart only for tool use; text blocks start with their first delta.
  if (block.kind === 'toolUse') {
    const start = { toolUse: { toolUseId: block.toolUseId, name: block.name } };
    frames.push({ bytes: encodeMessage('event', 'contentBlockStart', { contentBlockIndex: index, start }), paced: false });
  }
  for (const piece of block.deltas) {
    const delta = block.kind === 'text' ? { text: piece } : { toolUse: { input: piece } };
    frames.push({ bytes: encodeMessage('event', 'contentBlockDelta', { contentBlockIndex: index, delta }), paced: true });
  }
  frames.push({ bytes: encodeMessage('event', 'contentBlockStop', { contentBlockIndex: index }), paced: false });
  return frames;
}

function streamFrames(plan: Plan): Frame[] {
  const frames: Frame[] = [
    { bytes: encodeMessage('event', 'messageStart', { role: 'assistant' }), paced: false },
    ...plan.blocks.flatMap(blockFrames),
  ];
  const { failMidStream, truncate } = plan.script;
  if (failMidStream || truncate) {
    // Cut right after half of the deltas (at least one), dropping every later frame.
    const deltaIndexes = frames.flatMap((f, i) => (f.paced ? [i] : []));
    const cutAfter = deltaIndexes.length ? deltaIndexes[Math.max(0, Math.floor(deltaIndexes.length / 2) - 1)] : 0;
    frames.length = cutAfter + 1;
    if (failMidStream) {
      const payload = { message: 'Simulated mid-stream failure (ni-standin:fail_mid_stream).', originalStatusCode: 500 };
      frames.push({ bytes: encodeMessage('exception', FAULTS[failMidStream].exceptionType, payload), paced: true });
    }
    return frames;
  }
  frames.push({ bytes: encodeMessage('event', 'messageStop', { stopReason: plan.stopReason }), paced: false });
  const metadata = { usage: plan.usage, metrics: { latencyMs: plan.latencyMs } };
  frames.push({ bytes: encodeMessage('event', 'metadata', metadata), paced: false });
  return frames;
}

interface Burst {
  delayMs: number;
  /** Sent only once the test releases the call (`hold`). */
  held: boolean;
  bytes: Buffer;
}

/** Groups frames into writes separated by the scripted delays and the hold; neither means a single write. */
function burstsOf(frames: Frame[], script: Script): Burst[] {
  const bursts: Array<Omit<Burst, 'bytes'> & { parts: Uint8Array[] }> = [{ delayMs: script.slowFirstTokenMs, held: false, parts: [] }];
  let seenPaced = false;
  let holdNext = false;
  for (const frame of frames) {
    if (holdNext) bursts.push({ delayMs: frame.paced ? script.delayBetweenMs : 0, held: true, parts: [] });
    else if (frame.paced && seenPaced && script.delayBetweenMs > 0) bursts.push({ delayMs: script.delayBetweenMs, held: false, parts: [] });
    holdNext = script.hold && frame.paced && !seenPaced;
    seenPaced ||= frame.paced;
    bursts[bursts.length - 1].parts.push(frame.bytes);
  }
  return bursts.map((b) => ({ delayMs: b.delayMs, held: b.held, bytes: Buffer.concat(b.parts) }));
}

function converseJson(plan: Plan): object {
  const content = plan.blocks.map((b) =>
    b.kind === 'text' ? { text: b.text } : { toolUse: { toolUseId: b.toolUseId, name: b.name, input: b.input } },
  );
  return {
    output: { message: { role: 'assistant', content } },
    stopReason: plan.stopReason,
    usage: plan.usage,
    metrics: { latencyMs: plan.latencyMs },
  };
}

// ---------------------------------------------------------------------------------------------
// Control plane

const ACCOUNT_ID = '000000000000';
const GEO_PREFIXES = new Set(['us', 'eu', 'apac', 'ca', 'jp', 'au', 'global', 'us-gov']);
const PROVIDER_NAMES: Record<string, string> = {
  ai21: 'AI21 Labs',
  amazon: 'Amazon',
  anthropic: 'Anthropic',
  cohere: 'Cohere',
  deepseek: 'DeepSeek',
  meta: 'Meta',
  mistral: 'Mistral AI',
  openai: 'OpenAI',
  qwen: 'Qwen',
  stability: 'Stability AI',
  writer: 'Writer',
};

const foundationModelArn = (region: string, modelId: string) => `arn:aws:bedrock:${region}::foundation-model/${modelId}`;

function providerName(modelId: string): string {
  const key = modelId.split('.')[0];
  return PROVIDER_NAMES[key] ?? key.charAt(0).toUpperCase() + key.slice(1);
}

function foundationModelSummary(region: string, modelId: string): object {
  return {
    modelArn: foundationModelArn(region, modelId),
    modelId,
    modelName: modelId.slice(modelId.indexOf('.') + 1),
    providerName: providerName(modelId),
    inputModalities: ['TEXT'],
    outputModalities: ['TEXT'],
    responseStreamingSupported: true,
    customizationsSupported: [],
    inferenceTypesSupported: ['ON_DEMAND'],
    modelLifecycle: { status: 'ACTIVE' },
  };
}

function inferenceProfileSummary(region: string, profileId: string): object {
  const [geo] = profileId.split('.');
  const modelId = GEO_PREFIXES.has(geo) ? profileId.slice(geo.length + 1) : profileId;
  return {
    inferenceProfileId: profileId,
    inferenceProfileArn: `arn:aws:bedrock:${region}:${ACCOUNT_ID}:inference-profile/${profileId}`,
    inferenceProfileName: `${geo.toUpperCase()} ${modelId}`,
    description: `Routes requests to ${modelId} (simulated).`,
    status: 'ACTIVE',
    type: 'SYSTEM_DEFINED',
    models: [{ modelArn: foundationModelArn(region, modelId) }],
  };
}

function listFoundationModels(region: string, ids: string[], query: URLSearchParams): object {
  const provider = query.get('byProvider')?.toLowerCase();
  const summaries = ids.map((id) => foundationModelSummary(region, id)) as Array<{ providerName: string }>;
  return { modelSummaries: provider ? summaries.filter((s) => s.providerName.toLowerCase() === provider) : summaries };
}

function listInferenceProfiles(region: string, ids: string[], query: URLSearchParams): object {
  const type = query.get('type');
  const all = type && type !== 'SYSTEM_DEFINED' ? [] : ids;
  const start = Number(query.get('nextToken') ?? 0) || 0;
  const max = Number(query.get('maxResults') ?? 0) || all.length;
  const page = all.slice(start, start + max);
  const next = start + max < all.length ? String(start + max) : undefined;
  return { inferenceProfileSummaries: page.map((id) => inferenceProfileSummary(region, id)), nextToken: next };
}

// ---------------------------------------------------------------------------------------------
// HTTP handling (shared by the HTTP/1.1 and the HTTP/2 compatibility API)

type Request = http.IncomingMessage | http2.Http2ServerRequest;
interface Reply {
  readonly headersSent: boolean;
  writeHead(status: number, headers: http.OutgoingHttpHeaders): unknown;
  write(chunk: Uint8Array): boolean;
  end(chunk: Uint8Array): unknown;
  end(): unknown;
  once(event: 'close', listener: () => void): unknown;
  flushHeaders?(): void;
}

const BASE_HEADERS = { 'x-ni-simulated': 'true' };
const MODEL_ROUTE = /^\/model\/([^/]+)\/(converse-stream|converse)$/;

function sendJson(res: Reply, status: number, payload: object, extra: http.OutgoingHttpHeaders = {}): void {
  const body = Buffer.from(JSON.stringify(payload));
  res.writeHead(status, {
    ...BASE_HEADERS,
    'x-amzn-requestid': randomUUID(),
    'content-type': 'application/json',
    'content-length': body.length,
    ...extra,
  });
  res.end(body);
}

function sendError(res: Reply, error: ApiError): void {
  sendJson(res, ERROR_STATUS[error.type], { message: error.message }, { 'x-amzn-errortype': error.type });
}

async function readBody(req: Request): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Calls waiting at their `hold`, and who waits for one to be. */
class Holds {
  private readonly waiting = new Set<() => void>();
  private watchers: (() => void)[] = [];

  /** Resolves true once released, false if `signal` aborts first. */
  hold(signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const go = () => {
        this.waiting.delete(go);
        signal.removeEventListener('abort', go);
        resolve(!signal.aborted);
      };
      if (signal.aborted) return go();
      this.waiting.add(go);
      signal.addEventListener('abort', go, { once: true });
      for (const w of this.watchers.splice(0)) w();
    });
  }

  held(): Promise<void> {
    return this.waiting.size ? Promise.resolve() : new Promise((resolve) => this.watchers.push(resolve));
  }

  release(): void {
    for (const go of [...this.waiting]) go();
  }
}

/** How a call's answer is paced: the scripted delays and the hold. Each resolves false when the client has gone. */
interface Pacing {
  delay(ms: number): Promise<boolean>;
  hold(): Promise<boolean>;
}

class StandInState {
  readonly requests: RecordedRequest[] = [];
  readonly holds = new Holds();
  private readonly callCounts = new Map<string, number>();
  private answering = 0;
  private idleWatchers: (() => void)[] = [];

  constructor(private readonly opts: Required<Omit<StandInOptions, 'port' | 'host'>>) {}

  reset(): void {
    this.requests.length = 0;
    this.callCounts.clear();
  }

  idle(): Promise<void> {
    return this.answering ? new Promise((resolve) => this.idleWatchers.push(resolve)) : Promise.resolve();
  }

  async handle(req: Request, res: Reply): Promise<void> {
    this.answering++;
    try {
      await this.answer(req, res);
    } finally {
      if (--this.answering === 0) for (const w of this.idleWatchers.splice(0)) w();
    }
  }

  private async answer(req: Request, res: Reply): Promise<void> {
    const [pathname, search = ''] = (req.url ?? '/').split('?', 2);
    let status = 200;
    try {
      if (req.method === 'GET' && this.handleControlPlane(pathname, new URLSearchParams(search), res)) return;
      const route = MODEL_ROUTE.exec(pathname);
      if (!route || req.method !== 'POST') throw new ApiError('UnknownOperationException', `No route for ${req.method} ${pathname}`);
      const operation = route[2] === 'converse-stream' ? 'ConverseStream' : 'Converse';
      const modelId = decodeURIComponent(route[1]);
      const raw = await readBody(req);
      await this.handleModelCall(res, { path: pathname, modelId, operation, body: null, raw, aborted: false });
    } catch (err) {
      const apiError = err instanceof ApiError ? err : new ApiError('InternalServerException', String(err));
      status = ERROR_STATUS[apiError.type];
      if (!res.headersSent) sendError(res, apiError);
    } finally {
      if (!this.opts.quiet) process.stderr.write(`[bedrock-standin] ${req.method} ${pathname} -> ${status}\n`);
    }
  }

  private handleControlPlane(pathname: string, query: URLSearchParams, res: Reply): boolean {
    const { region, controlPlane } = this.opts;
    if (pathname === '/foundation-models') {
      sendJson(res, 200, listFoundationModels(region, controlPlane.foundationModels, query));
    } else if (pathname === '/inference-profiles') {
      sendJson(res, 200, listInferenceProfiles(region, controlPlane.inferenceProfiles, query));
    } else {
      return false;
    }
    return true;
  }

  /** ApiErrors thrown here become error responses before any byte. */
  private async handleModelCall(res: Reply, call: RecordedRequest): Promise<void> {
    this.record(call);
    let body: ConverseBody;
    try {
      call.body = JSON.parse(call.raw);
      body = call.body;
    } catch {
      throw new ApiError('ValidationException', 'Request body is not valid JSON.');
    }
    if (body === null || typeof body !== 'object' || !Array.isArray(body.messages)) {
      throw new ApiError('ValidationException', 'messages is required.');
    }
    const script = parseScript([...textsOf(lastUserContent(body)), ...textsOf(body.system)]);
    this.rejectIfScripted(script, call);
    const plan = planReply(body, script);

    const abort = new AbortController();
    let finished = false;
    res.once('close', () => {
      if (finished) return;
      call.aborted = true;
      abort.abort();
    });
    const { signal } = abort;
    const pacing: Pacing = {
      delay: async (ms) => {
        if (ms > 0) await this.opts.wait(ms, signal);
        return !signal.aborted;
      },
      hold: () => this.holds.hold(signal),
    };
    try {
      if (call.operation === 'Converse') await sendConverse(res, plan, pacing);
      else await sendStream(res, burstsOf(streamFrames(plan), script), pacing);
    } finally {
      finished = true; // the 'close' that follows a complete response is not a client abort
    }
  }

  private rejectIfScripted(script: Script, call: RecordedRequest): void {
    if (script.validationError) throw new ApiError('ValidationException', 'Simulated validation error (ni-standin:validation_error).');
    if (script.notFound) throw new ApiError('ResourceNotFoundException', `Model ${call.modelId} not found (ni-standin:not_found).`);
    if (script.throttle === undefined && script.unavailable === undefined) return;
    // Counted per identical call so client retries of the same request eventually succeed.
    const key = createHash('sha1').update(call.path).update('\0').update(call.raw).digest('hex');
    const n = (this.callCounts.get(key) ?? 0) + 1;
    this.callCounts.set(key, n);
    if (n <= (script.throttle ?? 0)) throw new ApiError('ThrottlingException', 'Too many requests, please wait before trying again.');
    if (n <= (script.unavailable ?? 0)) throw new ApiError('ServiceUnavailableException', 'Service unavailable, try again later.');
  }

  private record(call: RecordedRequest): void {
    if (this.opts.recordLimit <= 0) return;
    this.requests.push(call);
    if (this.requests.length > this.opts.recordLimit) this.requests.shift();
  }
}

/** The scripted delays on timers, cut short when the client goes away. */
const timers = (ms: number, signal: AbortSignal): Promise<void> => sleep(ms, undefined, { signal }).catch(() => undefined);

async function sendConverse(res: Reply, plan: Plan, pacing: Pacing): Promise<void> {
  if (!(await pacing.delay(plan.script.slowFirstTokenMs))) return;
  if (plan.script.hold && !(await pacing.hold())) return;
  const fault = plan.script.failMidStream;
  if (fault) throw new ApiError(FAULTS[fault].converseError, 'Simulated model failure (ni-standin:fail_mid_stream).');
  sendJson(res, 200, converseJson(plan));
}

async function sendStream(res: Reply, bursts: Burst[], pacing: Pacing): Promise<void> {
  const headers = { ...BASE_HEADERS, 'x-amzn-requestid': randomUUID(), 'content-type': 'application/vnd.amazon.eventstream' };
  if (bursts.length === 1 && bursts[0].delayMs === 0) {
    res.writeHead(200, { ...headers, 'content-length': bursts[0].bytes.length });
    res.end(bursts[0].bytes);
    return;
  }
  res.writeHead(200, headers);
  res.flushHeaders?.();
  for (const burst of bursts) {
    if (burst.held && !(await pacing.hold())) return;
    if (!(await pacing.delay(burst.delayMs))) return;
    res.write(burst.bytes);
  }
  res.end();
}

// ---------------------------------------------------------------------------------------------
// Transport: one TCP port, HTTP/2 prior knowledge or HTTP/1.1 chosen per connection

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0');

/** Buffers the first bytes until the protocol is known, then hands the socket (bytes unshifted) over. */
function dispatchByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let head: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = head.length ? Buffer.concat([head, chunk]) : chunk;
    const n = Math.min(head.length, H2_PREFACE.length);
    const isH2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (isH2 && n < H2_PREFACE.length) return;
    socket.off('data', onData);
    socket.pause();
    socket.unshift(head);
    if (isH2) {
      // http2 drains the socket's JS buffer with socket.read() on the next tick, so it must stay paused:
      // resuming would emit the preface as 'data' to nobody.
      h2.emit('connection', socket);
    } else {
      // The HTTP/1 parser takes the buffered bytes through its 'data' listener once the socket flows.
      h1.emit('connection', socket);
      socket.resume();
    }
  };
  socket.on('data', onData);
}

export async function startBedrockStandIn(opts: StandInOptions = {}): Promise<BedrockStandIn> {
  const state = new StandInState({
    region: opts.region ?? 'ca-central-1',
    quiet: opts.quiet ?? true,
    controlPlane: opts.controlPlane ?? { foundationModels: [], inferenceProfiles: [] },
    recordLimit: opts.recordLimit ?? 1000,
    wait: opts.wait ?? timers,
  });
  const onRequest = (req: Request, res: Reply): void => void state.handle(req, res).catch(() => undefined);
  const h1 = http.createServer(onRequest);
  h1.keepAliveTimeout = 60_000; // outlive client keep-alive pools to avoid reuse-after-close resets
  const h2 = http2.createServer(onRequest);

  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // resets from clients are routine; the HTTP layers report their own
    socket.setNoDelay(true);
    dispatchByPreface(socket, h1, h2);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const { address, port } = server.address() as net.AddressInfo;

  return {
    url: `http://${address}:${port}`,
    port,
    requests: state.requests,
    reset: () => state.reset(),
    held: () => state.holds.held(),
    release: () => state.holds.release(),
    idle: () => state.idle(),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      region: { type: 'string' },
      verbose: { type: 'boolean' },
      quiet: { type: 'boolean' }, // accepted for symmetry: quiet is the default
    },
  });
  const standIn = await startBedrockStandIn({
    port: values.port ? Number(values.port) : undefined,
    host: values.host,
    region: values.region,
    quiet: !values.verbose,
  });
  process.stdout.write(JSON.stringify({ url: standIn.url }) + '\n');
  const shutdown = (): void => void standIn.close().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

// Run as a script from its source (the check keeps it quiet inside the local runtime's bundle).
if (require.main === module && __filename.endsWith('bedrock-standin.ts')) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
