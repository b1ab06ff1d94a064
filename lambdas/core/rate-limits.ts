import { GatewayError } from './errors';
import type { Principal } from './principal';

/*
 * Per-key request limits, so that one key cannot take the whole stage's throughput or the account's Lambda
 * concurrency: requests per clock minute, and chat completions in flight at once. Each is a key setting; a key
 * without it has no such limit, and its requests write nothing before the upstream call (README: Limits).
 */
export interface RateLimits {
  requestsPerMinute: number | null;
  maxConcurrent: number | null;
}

export const rateLimitsOf = (p: Principal): RateLimits => ({ requestsPerMinute: p.requestsPerMinute ?? null, maxConcurrent: p.maxConcurrent ?? null });

/** Whether a request of this key is counted at all (a store write before the upstream call). */
export const hasRateLimits = (p: Principal) => p.requestsPerMinute != null || p.maxConcurrent != null;

export const requestsPerMinuteExceeded = (limit: number, retryAfterS: number) => new GatewayError(429,
  `This API key's limit of ${limit} requests per minute is reached; retry after ${retryAfterS} s.`,
  'rate_limit_error', 'rate_limit_exceeded', null, {}, { 'retry-after': String(retryAfterS) });

export const concurrencyExceeded = (limit: number) => new GatewayError(429,
  `This API key already has ${limit} requests in progress, its limit; retry when one has finished.`,
  'rate_limit_error', 'too_many_concurrent_requests', null, {}, { 'retry-after': '1' });
