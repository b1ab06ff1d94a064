import type { Route } from '../core/catalog';
import type { ChatRequest, StreamEvent } from '../core/chat';
import { GatewayError } from '../core/errors';

/** One upstream API behind the interface the chat flow uses: the gateway's request out, its stream events back. */
export interface Provider {
  /**
   * Resolves once the provider accepted the request (its response headers arrived); events then stream.
   * Throws an UpstreamError for a failure before that. `maxTokens` is already bounded by the model's limit.
   * `signal` aborts when the gateway's deadline for the call passes: a provider that can, stops its HTTP call
   * (the flow stops waiting for it either way).
   */
  stream(route: Route, request: ChatRequest, maxTokens: number, signal?: AbortSignal, credential?: CustomerCredential): Promise<ProviderStream>;
  /** The hops after the gateway that hold the data on this route (X-NI-Custody-Path). */
  custodyHops(route: Route): string[];
}

/**
 * A customer's own credential for this call (BYOK), instead of the operator's: its secret and, for Azure, the
 * customer's resource. A provider that takes none (Bedrock, Vertex AI) is never given one.
 */
export interface CustomerCredential {
  secret: string;
  endpoint?: string;
}

export interface ProviderStream {
  events: AsyncIterable<StreamEvent>;
  /** SHA-256 (hex) of the exact request body sent upstream. */
  requestSha256: string;
}

/** The one classification of upstream failures, the same for every provider. */
export type UpstreamFailure = 'throttled' | 'unavailable' | 'timeout' | 'rejected' | 'not_enabled' | 'broken';

const FAILURES: Record<UpstreamFailure, { status: number; type: GatewayError['type']; code: string; retryable: boolean; message: string }> = {
  throttled: { status: 429, type: 'rate_limit_error', code: 'upstream_throttled', retryable: true, message: 'The model provider is throttling requests; try again shortly.' },
  unavailable: { status: 503, type: 'api_error', code: 'upstream_unavailable', retryable: true, message: 'The model provider is temporarily unavailable.' },
  timeout: { status: 504, type: 'api_error', code: 'upstream_timeout', retryable: true, message: 'The model provider timed out.' },
  rejected: { status: 400, type: 'invalid_request_error', code: 'upstream_validation_error', retryable: false, message: 'The model provider rejected the request' },
  not_enabled: { status: 502, type: 'api_error', code: 'upstream_model_unavailable', retryable: false, message: 'The model is not enabled for this gateway at its provider.' },
  broken: { status: 502, type: 'api_error', code: 'upstream_stream_error', retryable: false, message: 'The model provider returned no stream.' },
};

/** What the provider's API answered, when it answered with an HTTP error: its status and error code, if any. */
export interface ProviderAnswer {
  status: number;
  code?: string;
}

/** A provider failure before any byte was streamed; `retryable` ones are retried with backoff. */
export class UpstreamError extends GatewayError {
  readonly retryable: boolean;
  readonly throttled: boolean;

  /** `detail`: the provider's own words, for a rejected request (never credentials). */
  constructor(readonly failure: UpstreamFailure, detail?: string, readonly answer?: ProviderAnswer) {
    const f = FAILURES[failure];
    super(f.status, detail ? `${f.message}: ${detail}` : f.message, f.type, f.code);
    this.retryable = f.retryable;
    this.throttled = failure === 'throttled';
  }
}
