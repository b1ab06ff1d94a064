import type { Route } from '../../core/catalog';
import { GatewayError } from '../../core/errors';
import { eventJson, postForEvents, type ProviderRefusal, type SseEvent } from '../http';
import type { CustomerCredential, Provider } from '../provider';
import { fromChatCompletionChunks, toChatCompletionsBody, type BodyOptions, type ChatCompletionChunk } from './chat-completions';

/** Where one route's request goes: the URL and the headers carrying its credential. */
export interface Target {
  url: string;
  headers: Record<string, string>;
}

export interface ChatCompletionsProviderOptions extends BodyOptions {
  /**
   * The route's target; throws UpstreamError('not_enabled') when the provider is not configured for it. With the
   * customer's own credential, the target carries it (and their endpoint, where the provider takes one).
   */
  target(route: Route, credential?: CustomerCredential): Promise<Target>;
  custodyHops(route: Route): string[];
}

/** Azure refuses a prompt its content filter flags with a 400 whose code says so; OpenAI clients know that code. */
const contentFilter = (r: ProviderRefusal) => (r.code === 'content_filter'
  ? new GatewayError(400, "The prompt was filtered by the model provider's content policy.", 'invalid_request_error', 'content_filter', 'messages')
  : undefined);

/** The SSE `data` payloads of a chat-completions stream, parsed, up to `[DONE]`. */
async function* chunksOf(events: AsyncIterable<SseEvent>): AsyncGenerator<ChatCompletionChunk> {
  for await (const e of events) {
    if (e.data === '[DONE]') return;
    yield eventJson<ChatCompletionChunk>(e);
  }
}

/** A provider speaking OpenAI's streamed chat completions over fetch (keep-alive is undici's default). */
export function createChatCompletionsProvider(opts: ChatCompletionsProviderOptions): Provider {
  return {
    async stream(route, request, maxTokens, signal, credential) {
      const target = await opts.target(route, credential);
      const body = JSON.stringify(toChatCompletionsBody(request, route.upstream_id, maxTokens, opts));
      const post = await postForEvents(target.url, target.headers, body, { signal, refusal: contentFilter });
      return { events: fromChatCompletionChunks(chunksOf(post.events)), requestSha256: post.requestSha256 };
    },
    custodyHops: opts.custodyHops,
  };
}
