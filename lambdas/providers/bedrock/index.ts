import { BedrockRuntimeClient, ConverseStreamCommand, type ConverseStreamCommandInput } from '@aws-sdk/client-bedrock-runtime';
import { createHash } from 'node:crypto';
import type { Route } from '../../core/catalog';
import { keepAliveHandler, resolveCredentialsNow, sdkClientSettings } from '../../sdk';
import { UpstreamError, type Provider, type UpstreamFailure } from '../provider';
import { fromConverseStream, toConverseInput, type ConverseStreamEvent } from './converse';
import { inferenceProfile } from './profiles';

export interface BedrockOptions {
  /** Every region's calls go here instead (a stand-in, a VPC endpoint). */
  endpoint?: string;
  /** Regions whose clients are created now, with their credentials resolved, rather than by a first request. */
  regions?: readonly string[];
}

const FAILURES: Record<string, UpstreamFailure> = {
  ThrottlingException: 'throttled',
  ServiceQuotaExceededException: 'throttled',
  ServiceUnavailableException: 'unavailable',
  InternalServerException: 'unavailable',
  ModelNotReadyException: 'unavailable',
  ModelTimeoutException: 'timeout',
  ValidationException: 'rejected',
  AccessDeniedException: 'not_enabled',
  ResourceNotFoundException: 'not_enabled',
};

function classify(err: unknown): unknown {
  const { name = '', message = '' } = (err ?? {}) as { name?: string; message?: string };
  const failure = FAILURES[name];
  if (!failure) return err;
  return new UpstreamError(failure, failure === 'rejected' ? message : undefined);
}

/** Bedrock Runtime's ConverseStream, one client per region. */
export function createBedrockProvider({ endpoint, regions = [] }: BedrockOptions = {}): Provider {
  const clients = new Map<string, BedrockRuntimeClient>();
  /** SHA-256 of the serialized request body, by the output object `send` returns for it. */
  const requestHashes = new WeakMap<object, string>();

  // ConverseStream works over HTTP/1.1 with keep-alive, which costs half of the default HTTP/2 handler; the SDK's
  // own retries are off because the gateway retries by route. `cacheMiddleware` resolves the middleware stack once
  // per command class, which is why nothing here adds per-command middleware or passes per-call options.
  function client(region: string): BedrockRuntimeClient {
    let c = clients.get(region);
    if (!c) {
      c = new BedrockRuntimeClient({
        region,
        maxAttempts: 1,
        cacheMiddleware: true,
        requestHandler: keepAliveHandler({ maxSockets: 256 }),
        ...sdkClientSettings('bedrock', endpoint),
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

  for (const region of regions) resolveCredentialsNow(client(region));

  return {
    async stream(route, request, maxTokens) {
      const input = toConverseInput(request, route.upstream_id, maxTokens);
      try {
        const out = await client(route.region).send(new ConverseStreamCommand(input as unknown as ConverseStreamCommandInput));
        if (!out.stream) throw new UpstreamError('broken');
        return { events: fromConverseStream(out.stream as AsyncIterable<ConverseStreamEvent>), requestSha256: requestHashes.get(out) ?? '' };
      } catch (err) {
        throw classify(err);
      }
    },
    custodyHops(route: Route) {
      const hops = [`bedrock@${route.region}#${route.upstream_id}`];
      // A cross-region profile lets AWS choose the processing region within the profile's geography.
      if (inferenceProfile(route.upstream_id)) hops.push(`bedrock-inference-profile@${route.jurisdiction}`);
      return hops;
    },
  };
}
