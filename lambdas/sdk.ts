import type { AwsCredentialIdentity, HttpAuthScheme, HttpHandlerOptions, HttpRequest, HttpResponse, RequestHandler } from '@smithy/types';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

/** What a runtime may change in how an AWS SDK client reaches its service: where, signed how, over what. */
export interface SdkClientSettings {
  endpoint?: string;
  credentials?: AwsCredentialIdentity;
  httpAuthSchemes?: HttpAuthScheme[];
  requestHandler?: RequestHandler<HttpRequest, HttpResponse, HttpHandlerOptions>;
}

/** `service` is the signing name (dynamodb, events, bedrock…); `endpoint` the configured override, if any. */
export type SdkClientFactory = (service: string, endpoint: string | undefined) => SdkClientSettings;

/** In AWS: the configured endpoint, if any, and the SDK's defaults for the rest. */
const awsClientSettings: SdkClientFactory = (_service, endpoint) => (endpoint ? { endpoint } : {});

let factory: SdkClientFactory = awsClientSettings;

/** Settings for a new client of `service`; every AWS SDK client the gateway creates takes them. */
export const sdkClientSettings: SdkClientFactory = (service, endpoint) => factory(service, endpoint);

/** A runtime that serves some endpoints itself (the local runtime) sets how clients reach them, before creating any. */
export function useSdkClientFactory(f: SdkClientFactory): void {
  factory = f;
}

export interface KeepAliveOptions {
  maxSockets?: number;
  connectionTimeout?: number;
  requestTimeout?: number;
}

/** HTTP/1.1 with keep-alive: a fresh TCP and TLS handshake per call would dominate the hot path. */
export function keepAliveHandler(opts: KeepAliveOptions = {}): NodeHttpHandler {
  const agent = { keepAlive: true, ...(opts.maxSockets ? { maxSockets: opts.maxSockets } : {}) };
  return new NodeHttpHandler({
    ...(opts.connectionTimeout ? { connectionTimeout: opts.connectionTimeout } : {}),
    ...(opts.requestTimeout ? { requestTimeout: opts.requestTimeout, throwOnRequestTimeout: true } : {}),
    httpAgent: new Agent(agent),
    httpsAgent: new HttpsAgent(agent),
  });
}

/**
 * Resolves a client's credentials now (a function's init, which Lambda runs on a full vCPU before the first
 * request), so that its first call does not; a failure is left for that call to report.
 */
export function resolveCredentialsNow(client: { config: { credentials: () => Promise<unknown> } }): void {
  client.config.credentials().catch(() => undefined);
}
