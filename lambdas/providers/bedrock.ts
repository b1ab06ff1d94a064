import { BedrockRuntimeClient, ConverseStreamCommand, type ConverseStreamCommandInput } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createHash } from 'node:crypto';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Route } from '../core/catalog';
import { loopbackClientConfig } from '../loopback';
import type { ConverseStreamEvent } from '../core/converse';
import { UpstreamError, type Provider } from './types';

const clients = new Map<string, BedrockRuntimeClient>();

/** SHA-256 of the serialized request body, by the output object `send` returns for it. */
const requestHashes = new WeakMap<object, string>();

/**
 * One client per region. HTTP/1.1 with keep-alive (ConverseStream works over it, and on loopback it costs half
 * of the default HTTP/2 handler); the SDK's own retries are off because the gateway retries by route.
 * `cacheMiddleware` resolves the middleware stack once per command class instead of on every call, which is
 * why nothing here adds per-command middleware or passes per-call options.
 * `NI_BEDROCK_ENDPOINT` redirects every region to a stand-in or a VPC endpoint.
 */
function client(region: string): BedrockRuntimeClient {
  let c = clients.get(region);
  if (!c) {
    c = new BedrockRuntimeClient({
      region,
      maxAttempts: 1,
      cacheMiddleware: true,
      ...loopbackClientConfig(process.env.NI_BEDROCK_ENDPOINT, 'bedrock'),
      requestHandler: new NodeHttpHandler({
        httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
      }),
    });
    // The body hashed into the custody record is the serialized one, exactly as it leaves for the provider.
    c.middlewareStack.add((next) => async (args) => {
      const body = (args.request as { body?: string | Uint8Array }).body;
      const hash = createHash('sha256').update(body ?? '').digest('hex');
      const result = await next(args);
      requestHashes.set(result.output as object, hash);
      return result;
    }, { step: 'finalizeRequest', name: 'niHashRequestBody' });
    clients.set(region, c);
  }
  return c;
}

/** Set by the local runtime when it serves Bedrock from its stand-in. */
const simulated = () => process.env.NI_BEDROCK_SIMULATED === '1';

function toUpstreamError(err: unknown): unknown {
  const name = (err as { name?: string } | null)?.name ?? '';
  const message = (err as { message?: string } | null)?.message ?? '';
  switch (name) {
    case 'ThrottlingException':
    case 'ServiceQuotaExceededException':
      return new UpstreamError(429, 'The model provider is throttling requests; try again shortly.', 'rate_limit_error', 'upstream_throttled', true, true);
    case 'ServiceUnavailableException':
    case 'InternalServerException':
    case 'ModelNotReadyException':
      return new UpstreamError(503, 'The model provider is temporarily unavailable.', 'api_error', 'upstream_unavailable', true);
    case 'ValidationException':
      return new UpstreamError(400, `The model provider rejected the request: ${message}`, 'invalid_request_error', 'upstream_validation_error', false);
    case 'ModelTimeoutException':
      return new UpstreamError(504, 'The model provider timed out.', 'api_error', 'upstream_timeout', false);
    case 'AccessDeniedException':
    case 'ResourceNotFoundException':
      return new UpstreamError(502, 'The model is not enabled for this gateway at its provider.', 'api_error', 'upstream_model_unavailable', false);
    default:
      return err;
  }
}

export const bedrock: Provider = {
  async converseStream(route: Route, input) {
    try {
      const out = await client(route.region).send(new ConverseStreamCommand(input as unknown as ConverseStreamCommandInput));
      if (!out.stream) throw new UpstreamError(502, 'The model provider returned no stream.', 'api_error', 'upstream_stream_error', false);
      return { events: out.stream as AsyncIterable<ConverseStreamEvent>, requestSha256: requestHashes.get(out) ?? '', simulated: simulated() };
    } catch (err) {
      throw toUpstreamError(err);
    }
  },
};
