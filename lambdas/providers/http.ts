import { createHash } from 'node:crypto';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { GatewayError } from '../core/errors';
import { upstreamStreamError } from '../core/stream';
import { UpstreamError, type UpstreamFailure } from './provider';

/*
 * The one HTTP client of the providers that speak JSON over HTTPS with server-sent events (OpenAI, Azure OpenAI,
 * OpenAI-compatible hosts, Anthropic, Vertex AI): fetch (undici keeps connections alive) and eventsource-parser.
 */

/** One server-sent event: its `event:` name (if any) and its data. */
export interface SseEvent {
  event?: string;
  data: string;
}

/** An HTTP status from a provider's API, in the one classification every provider shares. */
export function failureOfStatus(status: number): UpstreamFailure {
  if (status === 429) return 'throttled';
  if (status === 408) return 'timeout';
  if (status === 401 || status === 403 || status === 404) return 'not_enabled';
  if (status >= 500) return 'unavailable';
  // 400, 413, 422 and any other refusal: the provider's message says what it did not take.
  return status >= 400 ? 'rejected' : 'broken';
}

/** undici's codes for a server that accepted the connection but sent no headers (or no body) in time. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** A fetch that failed without a response: our own abort or a timeout, else a connection refused or reset. */
function failureOfNetworkError(err: unknown, signal: AbortSignal | undefined): UpstreamError {
  const code = (err as { cause?: { code?: string } } | null)?.cause?.code;
  return new UpstreamError(signal?.aborted || (code !== undefined && TIMEOUT_CODES.has(code)) ? 'timeout' : 'unavailable');
}

/** What an error body (`{"error":{"message","code"}}`: OpenAI's, Anthropic's and Google's shape) says, if anything. */
export interface ProviderRefusal {
  status: number;
  message?: string;
  code?: string;
}

function refusalOf(status: number, text: string): ProviderRefusal {
  try {
    // OpenAI's errors carry a `code` (invalid_api_key, insufficient_quota); Anthropic's only a `type`.
    const { message, code, type } = (JSON.parse(text) as { error?: { message?: unknown; code?: unknown; type?: unknown } }).error ?? {};
    const named = typeof code === 'string' ? code : typeof type === 'string' ? type : undefined;
    return { status, message: typeof message === 'string' ? message : undefined, code: named };
  } catch {
    return { status };
  }
}

export interface StreamingPost {
  /** The response's server-sent events; a failure while reading them is an upstream stream error. */
  events: AsyncIterable<SseEvent>;
  /** SHA-256 (hex) of the exact body bytes sent. */
  requestSha256: string;
}

export interface PostOptions {
  signal?: AbortSignal;
  /** A provider's own reading of a refusal (Azure's content filter), before the shared classification. */
  refusal?: (r: ProviderRefusal) => GatewayError | undefined;
}

/**
 * POSTs a JSON body to a streaming (SSE) API and resolves once the response headers are in. A non-2xx answer is
 * thrown classified from its status (a rejected request carries the provider's message); the body of an error is
 * always read, for that message and so that the connection is free again.
 */
export async function postForEvents(url: string, headers: Record<string, string>, body: string, opts: PostOptions = {}): Promise<StreamingPost> {
  const bytes = Buffer.from(body, 'utf8');
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers }, body: bytes, signal: opts.signal });
  } catch (err) {
    throw failureOfNetworkError(err, opts.signal);
  }
  if (!res.ok) {
    const refusal = refusalOf(res.status, await res.text().catch(() => ''));
    const own = opts.refusal?.(refusal);
    if (own) throw own;
    const failure = failureOfStatus(res.status);
    throw new UpstreamError(failure, failure === 'rejected' ? (refusal.message ?? `HTTP ${res.status}`) : undefined, { status: res.status, code: refusal.code });
  }
  if (!res.body) throw new UpstreamError('broken');
  return { events: readEvents(res.body), requestSha256: createHash('sha256').update(bytes).digest('hex') };
}

async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  try {
    for await (const e of body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream())) {
      yield e.event === undefined ? { data: e.data } : { event: e.event, data: e.data };
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw upstreamStreamError('The connection to the model provider broke during the response.');
  }
}

/**
 * GETs a provider's JSON API (a model or deployment listing, for `ni catalog check`): the status and the parsed
 * body (null when it is not JSON). A connection failure throws, naming the URL's host, never its credentials.
 */
export async function getJson(url: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json', ...headers } });
  } catch (err) {
    throw new Error(`cannot reach ${new URL(url).host}: ${(err as Error).message}`);
  }
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** Parses one event's JSON data; a provider sending something else is a broken stream. */
export function eventJson<T>(e: SseEvent): T {
  try {
    return JSON.parse(e.data) as T;
  } catch {
    throw upstreamStreamError('The model provider sent an event that is not JSON.');
  }
}
