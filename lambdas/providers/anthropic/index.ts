import type { Route } from '../../core/catalog';
import type { SecretSource } from '../../secrets';
import { postForEvents } from '../http';
import { UpstreamError, type Provider } from '../provider';
import { fromMessagesStream, toMessagesRequest } from './messages';

export interface AnthropicOptions {
  /** Instead of https://api.anthropic.com (a stand-in, a proxy). */
  baseUrl?: string;
  secrets: SecretSource;
}

export const ANTHROPIC_API = 'https://api.anthropic.com';
const ANTHROPIC_VERSION = '2023-06-01';
/** A route whose region is `us` asks for US-only inference; `global` is Anthropic's default. */
const PINNED_GEOS = new Set(['us']);

/** Anthropic's Messages API, streamed; the API key is the `anthropic` provider secret. */
export function createAnthropicProvider({ baseUrl = ANTHROPIC_API, secrets }: AnthropicOptions): Provider {
  const url = `${baseUrl.replace(/\/+$/, '')}/v1/messages`;
  return {
    async stream(route, request, maxTokens, signal, credential) {
      const apiKey = credential?.secret ?? await secrets.get('anthropic');
      if (!apiKey) throw new UpstreamError('not_enabled');
      const body = toMessagesRequest(request, route.upstream_id, maxTokens, PINNED_GEOS.has(route.region) ? route.region : undefined);
      const post = await postForEvents(url, { 'x-api-key': apiKey, 'anthropic-version': ANTHROPIC_VERSION }, JSON.stringify(body), { signal });
      return { events: fromMessagesStream(post.events), requestSha256: post.requestSha256 };
    },
    custodyHops(route: Route) {
      return [`anthropic@${route.region}#${route.upstream_id}`];
    },
  };
}
