import type { Route } from '../core/catalog';
import type { ChatRequest } from '../core/chat';
import { GatewayError } from '../core/errors';
import { UpstreamError, type Provider, type ProviderStream } from './provider';
import type { ProviderRegistry } from './registry';

export const MAX_ATTEMPTS = 3;
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 800;
const THROTTLED_RETRY_AFTER_S = 2;

export interface Attempted {
  stream: ProviderStream;
  route: Route;
  provider: Provider;
  /** How many attempts were throttled before this one succeeded. */
  throttles: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls the first route, retrying retryable failures (throttling, transient 5xx) with bounded exponential
 * backoff and full jitter. Retries rotate through `routes`, which the resolver has limited to one
 * jurisdiction, so a retry can land on another endpoint but never in a wider jurisdiction.
 */
export async function callUpstream(providers: ProviderRegistry, routes: Route[], request: ChatRequest, maxTokens: number, signal?: AbortSignal): Promise<Attempted> {
  let throttles = 0;
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw signal.reason;
    const route = routes[attempt % routes.length];
    const provider = providers.get(route.provider);
    if (!provider) throw new GatewayError(500, `No provider for route ${route.provider}`, 'server_error', 'provider_unavailable');
    try {
      return { stream: await provider.stream(route, request, maxTokens, signal), route, provider, throttles };
    } catch (err) {
      if (!(err instanceof UpstreamError) || !err.retryable || attempt + 1 >= MAX_ATTEMPTS) {
        if (err instanceof UpstreamError && err.throttled) {
          Object.assign(err.extra, { upstream_throttles: throttles + 1 });
          // Our retries are spent: a client that retries (the openai SDKs do, on 429) waits this long first.
          Object.assign(err.headers, { 'retry-after': String(THROTTLED_RETRY_AFTER_S) });
        }
        throw err;
      }
      if (err.throttled) throttles++;
      await sleep(Math.random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt));
    }
  }
}
