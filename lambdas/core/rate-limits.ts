import { GatewayError } from './errors';
import type { Principal } from './principal';

/*
 * Per-key request limits, so that one key cannot take the whole stage's throughput or the account's Lambda
 * concurrency: requests per clock minute, and chat completions in flight at once. A key may set its own; these
 * apply otherwise (README: Limits).
 */
export const DEFAULT_REQUESTS_PER_MINUTE = 300;
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 10;

export interface RateLimits {
  requestsPerMinute: number;
  maxConcurrent: number;
}

export const rateLimitsOf = (p: Principal): RateLimits => ({
  requestsPerMinute: p.requestsPerMinute ?? DEFAULT_REQUESTS_PER_MINUTE,
  maxConcurrent: p.maxConcurrent ?? DEFAULT_MAX_CONCURRENT_REQUESTS,
});

export const requestsPerMinuteExceeded = (limit: number, retryAfterS: number) => new GatewayError(429,
  `This API key's limit of ${limit} requests per minute is reached; retry after ${retryAfterS} s.`,
  'rate_limit_error', 'rate_limit_exceeded', null, {}, { 'retry-after': String(retryAfterS) });

export const concurrencyExceeded = (limit: number) => new GatewayError(429,
  `This API key already has ${limit} requests in progress, its limit; retry when one has finished.`,
  'rate_limit_error', 'too_many_concurrent_requests', null, {}, { 'retry-after': '1' });
