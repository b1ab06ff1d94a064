import type { Route } from '../core/catalog';
import type { ChatRequest } from '../core/chat';
import type { RouteAttempt } from '../core/custody';
import { byokProviderError, CUSTOMER_ACCOUNT_STATUSES, type ByokProvider } from '../core/byok';
import { GatewayError } from '../core/errors';
import { UpstreamError, type CustomerCredential, type Provider, type ProviderStream } from './provider';
import type { ProviderRegistry } from './registry';

export const MAX_ATTEMPTS = 3;
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 800;
const THROTTLED_RETRY_AFTER_S = 2;
/**
 * How long an attempt may take to connect and receive the provider's response headers. The providers stream, so
 * their headers come before any generation; past this the endpoint is unreachable or stuck, and the next route
 * of the same jurisdiction is tried.
 */
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 30_000;

export interface Attempted {
  stream: ProviderStream;
  route: Route;
  provider: Provider;
  /** How many attempts were throttled before this one succeeded. */
  throttles: number;
}

export interface UpstreamOptions {
  /** Every attempted route is appended here, failed ones included (the custody event lists them). */
  attempts: RouteAttempt[];
  firstByteTimeoutMs?: number;
  /** Starts the first-byte timer of an attempt; the function it returns stops it (default: a timer). */
  schedule?: (ms: number, fire: () => void) => () => void;
  /** Aborts when the request's deadline passes: no further attempt starts, and the current one is aborted. */
  signal?: AbortSignal;
  /**
   * The customer's own credential (BYOK) for every route here, all of that provider's. The provider's refusal of it,
   * its rate limit or its quota is the customer's account answering: never retried, thrown as byok_provider_error.
   */
  customer?: { provider: ByokProvider; credential: CustomerCredential };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function timer(ms: number, fire: () => void): () => void {
  const t = setTimeout(fire, ms);
  return () => clearTimeout(t);
}

/** One attempt, abandoned (and its request aborted) when the provider has not answered within `timeoutMs`. */
async function attempt(provider: Provider, route: Route, request: ChatRequest, maxTokens: number, timeoutMs: number, opts: UpstreamOptions): Promise<ProviderStream> {
  const abort = new AbortController();
  let stop = () => {};
  const timedOut = new Promise<never>((_, reject) => {
    stop = (opts.schedule ?? timer)(timeoutMs, () => {
      abort.abort();
      reject(new UpstreamError('timeout'));
    });
  });
  // The request's deadline ends the attempt, its call and later its stream; its timer goes with it, even before the
  // provider gives up (a listener: AbortSignal.any would tie each request's signals together through weak references).
  const deadline = opts.signal;
  deadline?.addEventListener('abort', () => (stop(), abort.abort(deadline.reason)), { once: true });
  try {
    return await Promise.race([provider.stream(route, request, maxTokens, abort.signal, opts.customer?.credential), timedOut]);
  } finally {
    stop();
  }
}

/**
 * Calls the first route, retrying retryable failures (throttling, transient 5xx, no answer before the first byte)
 * with bounded exponential backoff and full jitter. Retries rotate through `routes`, which the resolver has
 * limited to one jurisdiction, so a retry can land on another endpoint but never in a wider jurisdiction. Nothing
 * is retried once the provider has answered: after that, bytes may have reached the client.
 */
export async function callUpstream(providers: ProviderRegistry, routes: Route[], request: ChatRequest, maxTokens: number, opts: UpstreamOptions): Promise<Attempted> {
  let throttles = 0;
  for (let n = 0; ; n++) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const route = routes[n % routes.length];
    const provider = providers.get(route.provider);
    if (!provider) throw new GatewayError(500, `No provider for route ${route.provider}`, 'server_error', 'provider_unavailable');
    const { customer } = opts;
    const tried: RouteAttempt = { provider: route.provider, region: route.region, upstream_id: route.upstream_id, outcome: 'ok', ...(customer && { credential: 'customer' as const }) };
    opts.attempts.push(tried);
    try {
      return { stream: await attempt(provider, route, request, maxTokens, opts.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS, opts), route, provider, throttles };
    } catch (err) {
      tried.outcome = err instanceof UpstreamError ? err.failure : 'error';
      if (customer && err instanceof UpstreamError && err.answer && CUSTOMER_ACCOUNT_STATUSES.has(err.answer.status)) {
        throw byokProviderError(customer.provider, err.answer.status, err.answer.code);
      }
      if (!(err instanceof UpstreamError) || !err.retryable || n + 1 >= MAX_ATTEMPTS) {
        if (err instanceof UpstreamError && err.throttled) {
          Object.assign(err.extra, { upstream_throttles: throttles + 1 });
          // Our retries are spent: a client that retries (the openai SDKs do, on 429) waits this long first.
          Object.assign(err.headers, { 'retry-after': String(THROTTLED_RETRY_AFTER_S) });
        }
        throw err;
      }
      if (err.throttled) throttles++;
      await sleep(Math.random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** n));
    }
  }
}
