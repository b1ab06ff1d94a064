import { createHash } from 'node:crypto';
import { GatewayError } from '../core/errors';
import { upstreamStreamError } from '../core/stream';
import { UpstreamError, type UpstreamFailure } from './provider';
import { parseSse, type SseEvent } from './sse';

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

/** A fetch that failed without a response: a timeout, else a connection the provider refused or reset. */
function failureOfNetworkError(err: unknown): UpstreamError {
  const cause = (err as { cause?: { code?: string } })?.cause;
  return new UpstreamError(cause?.code && TIMEOUT_CODES.has(cause.code) ? 'timeout' : 'unavailable');
}

/** The provider's own message from an error body (`{"error":{"message"}}`, Anthropic's and Google's shape). */
function providerMessage(text: string): string | undefined {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}

export interface StreamingPost {
  /** The response's server-sent events; a failure while reading them is an upstream stream error. */
  events: AsyncIterable<SseEvent>;
  /** SHA-256 (hex) of the exact body bytes sent. */
  requestSha256: string;
}

/**
 * POSTs a JSON body to a streaming (SSE) API and resolves once the response headers are in. A non-2xx answer is
 * thrown as an UpstreamError classified from its status (a rejected request carries the provider's message);
 * the response body of an error is read only for that message.
 */
export async function postForEvents(url: string, headers: Record<string, string>, body: string): Promise<StreamingPost> {
  const bytes = Buffer.from(body, 'utf8');
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers }, body: bytes });
  } catch (err) {
    throw failureOfNetworkError(err);
  }
  if (!res.ok) {
    const failure = failureOfStatus(res.status);
    const text = await res.text().catch(() => '');
    throw new UpstreamError(failure, failure === 'rejected' ? providerMessage(text) : undefined);
  }
  if (!res.body) throw new UpstreamError('broken');
  return { events: readEvents(res.body), requestSha256: createHash('sha256').update(bytes).digest('hex') };
}

async function* readEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  try {
    yield* parseSse(body);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw upstreamStreamError('The connection to the model provider broke during the response.');
  }
}

/** Parses one event's JSON data; a provider sending something else is a broken stream. */
export function eventJson<T>(e: SseEvent): T {
  try {
    return JSON.parse(e.data) as T;
  } catch {
    throw upstreamStreamError('The model provider sent an event that is not JSON.');
  }
}
