import { randomUUID } from 'node:crypto';
import { asGatewayError, GatewayError } from '../core/errors';
import type { Principal } from '../core/principal';

/*
 * The gateway's HTTP seam: the Lambda handler and the local runtime both turn their world into an HttpRequest
 * and a ResponseSink, so everything behind them is the same code.
 */

export interface HttpRequest {
  method: string;
  path: string;
  /** Lower-cased names. */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: string;
  requestId: string;
  /** Set by the authorizer for authenticated routes. */
  principal: Principal | null;
}

export interface ResponseSink {
  /** Status and headers; sent with the first write. */
  start(status: number, headers: Record<string, string>): void;
  write(chunk: string): void;
  end(): void;
  /** Called once if the client goes away before the end. */
  onClose(listener: () => void): void;
}

/** API Gateway and Lambda accept at most 6 MB per invocation payload; keep room for the event around the body. */
export const MAX_REQUEST_BODY_BYTES = 6 * 1024 * 1024 - 128 * 1024;

export const newRequestId = () => randomUUID();

const EXPOSED = 'x-request-id, x-ni-request-id, x-ni-privacy-tier, x-ni-resolved-jurisdiction, x-ni-custody-path, x-ni-pii-substitutions, x-should-retry';

/** Permissive CORS: browser-based clients (and Cursor's verify step) send preflights. */
export const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, content-type, x-ni-privacy-tier, openai-organization, openai-project, x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-runtime, x-stainless-runtime-version, x-stainless-retry-count, x-stainless-timeout',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-expose-headers': EXPOSED,
  'access-control-max-age': '86400',
};

/**
 * Errors API Gateway answers itself in AWS (lib/api.ts turns them into its gateway responses); the local runtime,
 * which plays API Gateway's part, answers with the same ones. An oversized body that does reach the gateway
 * Lambda gets the same 413.
 */
export const GATEWAY_ERRORS = {
  invalidApiKey: () => new GatewayError(401, 'Invalid API key', 'invalid_request_error', 'invalid_api_key'),
  accessDenied: () => new GatewayError(403, 'This API key is not allowed to access this resource', 'permission_error', 'permission_denied'),
  /** The authorizer failed (a store error, say): the key is unchecked, not invalid, so a retry may succeed. */
  authorizerFailure: () => new GatewayError(500, 'The API key could not be checked. Please retry.', 'server_error', 'authorizer_error'),
  requestTooLarge: () => new GatewayError(413, `Request body exceeds the ${MAX_REQUEST_BODY_BYTES}-byte limit.`, 'invalid_request_error', 'request_too_large'),
  /** A path outside the route table (lambdas/routes.ts). */
  unknownUrl: () => new GatewayError(404, 'Unknown request URL', 'invalid_request_error', 'unknown_url'),
};

/** The request id under both names, on every answer. */
export const requestIdHeaders = (requestId: string): Record<string, string> => ({ 'x-request-id': requestId, 'x-ni-request-id': requestId });

export const requestHeaders = (requestId: string): Record<string, string> => ({ ...CORS_HEADERS, ...requestIdHeaders(requestId) });

export function sendJson(sink: ResponseSink, status: number, headers: Record<string, string>, body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  sink.start(status, { ...headers, 'content-type': 'application/json' });
  sink.write(text);
  sink.end();
  return text;
}

export function sendError(sink: ResponseSink, headers: Record<string, string>, err: unknown): GatewayError {
  const e = asGatewayError(err);
  sendJson(sink, e.status, { ...headers, ...e.headers }, e.toBody());
  return e;
}
