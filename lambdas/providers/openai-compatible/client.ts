import { createHash } from 'node:crypto';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { Route } from '../../core/catalog';
import { GatewayError } from '../../core/errors';
import { upstreamStreamError } from '../../core/stream';
import { UpstreamError, type Provider } from '../provider';
import { fromChatCompletionChunks, toChatCompletionsBody, type BodyOptions, type ChatCompletionChunk } from './chat-completions';

/** Where one route's request goes: the URL and the headers carrying its credential. */
export interface Target {
  url: string;
  headers: Record<string, string>;
}

export interface ChatCompletionsProviderOptions extends BodyOptions {
  /** The route's target; throws UpstreamError('not_enabled') when the provider is not configured for it. */
  target(route: Route): Promise<Target>;
  custodyHops(route: Route): string[];
}

/** What an OpenAI-style error body says, as far as it says anything. */
async function errorOf(res: Response): Promise<{ message?: string; code?: string }> {
  try {
    const body = (await res.json()) as { error?: { message?: unknown; code?: unknown } };
    const { message, code } = body.error ?? {};
    return { message: typeof message === 'string' ? message : undefined, code: typeof code === 'string' ? code : undefined };
  } catch {
    return {};
  }
}

/** An HTTP error answer in the one classification every provider shares. */
async function failure(res: Response): Promise<Error> {
  const { status } = res;
  const err = await errorOf(res); // read in every case: an unread body holds the connection
  if (status === 429) return new UpstreamError('throttled');
  if (status >= 500) return new UpstreamError('unavailable');
  if (status === 401 || status === 403 || status === 404) return new UpstreamError('not_enabled');
  // Azure refuses a prompt its content filter flags with a 400 whose code says so; OpenAI clients know that code.
  if (err.code === 'content_filter') {
    return new GatewayError(400, "The prompt was filtered by the model provider's content policy.", 'invalid_request_error', 'content_filter', 'messages');
  }
  return new UpstreamError('rejected', err.message ?? `HTTP ${status}`);
}

/** A fetch that failed without an answer: our own abort (the first-byte timeout), a connect timeout, or a refused/reset connection. */
function unanswered(err: unknown, signal: AbortSignal | undefined): UpstreamError {
  const code = (err as { cause?: { code?: string } }).cause?.code;
  return new UpstreamError(signal?.aborted || code === 'UND_ERR_CONNECT_TIMEOUT' ? 'timeout' : 'unavailable');
}

/** The SSE `data` payloads of a chat-completions stream, parsed, up to `[DONE]`. */
async function* chunksOf(body: ReadableStream<Uint8Array>): AsyncGenerator<ChatCompletionChunk> {
  const events = body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
  for await (const e of events) {
    if (e.data === '[DONE]') return;
    try {
      yield JSON.parse(e.data) as ChatCompletionChunk;
    } catch {
      throw upstreamStreamError('The model provider sent a malformed stream event.');
    }
  }
}

/** A provider speaking OpenAI's streamed chat completions over fetch (keep-alive is undici's default). */
export function createChatCompletionsProvider(opts: ChatCompletionsProviderOptions): Provider {
  return {
    async stream(route, request, maxTokens, signal) {
      const target = await opts.target(route);
      const body = JSON.stringify(toChatCompletionsBody(request, route.upstream_id, maxTokens, opts));
      let res: Response;
      try {
        res = await fetch(target.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...target.headers }, body, signal });
      } catch (err) {
        throw unanswered(err, signal);
      }
      if (!res.ok) throw await failure(res);
      if (!res.body) throw new UpstreamError('broken');
      return { events: fromChatCompletionChunks(chunksOf(res.body)), requestSha256: createHash('sha256').update(body).digest('hex') };
    },
    custodyHops: opts.custodyHops,
  };
}
