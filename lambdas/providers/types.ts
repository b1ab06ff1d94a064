import type { Route } from '../core/catalog';
import type { ConverseInput, ConverseStreamEvent } from '../core/converse';
import { GatewayError } from '../core/errors';

/** One upstream API (Bedrock today) behind the interface the chat flow uses. */
export interface Provider {
  /** Resolves once the provider accepted the request (headers received); events then stream. */
  converseStream(route: Route, input: ConverseInput): Promise<UpstreamStream>;
}

export interface UpstreamStream {
  events: AsyncIterable<ConverseStreamEvent>;
  /** SHA-256 (hex) of the exact request body sent upstream. */
  requestSha256: string;
  /** Served by the local stand-in, not a real provider. */
  simulated: boolean;
}

/** A provider failure before any byte was streamed; `retryable` ones are retried with backoff. */
export class UpstreamError extends GatewayError {
  constructor(status: number, message: string, type: GatewayError['type'], code: string, readonly retryable: boolean, readonly throttled = false) {
    super(status, message, type, code);
  }
}

