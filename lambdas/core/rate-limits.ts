import { GatewayError } from './errors';
import type { Principal } from './principal';

/*
 * Per-key request limits, so that one key cannot take the whole stage's throughput or the account's Lambda
 * concurrency: requests per clock minute, and chat completions in flight at once. Each is a key setting; a key
 * created without it (or whose record predates it) has the default below, and null means no such limit
 * (README: Limits).
 */
export const DEFAULT_REQUESTS_PER_MINUTE = 300;
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 10;

/** Whether a request of this key is counted at all (a store write before the upstream call). */
export const hasRateLimits = (p: Principal) => p.requestsPerMinute !== null || p.maxConcurrent !== null;

export const requestsPerMinuteExceeded = (limit: number, retryAfterS: number) => new GatewayError(429,
  `This API key's limit of ${limit} requests per minute is reached; retry after ${retryAfterS} s.`,
  'rate_limit_error', 'rate_limit_exceeded', null, {}, { 'retry-after': String(retryAfterS) });

export const concurrencyExceeded = (limit: number) => new GatewayError(429,
  `This API key already has ${limit} requests in progress, its limit; retry when one has finished.`,
  'rate_limit_error', 'too_many_concurrent_requests', null, {}, { 'retry-after': '1' });
