import type { HttpAuthScheme, HttpRequest, HttpResponse, Identity, RequestHandler } from '@smithy/types';
import type { SdkClientFactory } from '../lambdas/sdk';

/**
 * The local runtime's own endpoints (embedded DynamoDB, local EventBridge, Bedrock stand-in) listen on loopback
 * and verify no signature, so clients pointed at them skip SigV4, whose hashing costs a noticeable share of
 * each call's CPU. They still send a well-formed Authorization header (dynalite checks its shape). Any other
 * endpoint is signed as usual.
 */
const LOOPBACK = /^https?:\/\/(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])(?::\d+)?(?:\/|$)/;

export const isLoopback = (endpoint: string | undefined): endpoint is string => endpoint !== undefined && LOOPBACK.test(endpoint);

const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** The SigV4 timestamp (YYYYMMDDTHHMMSSZ), formatted once per second rather than on every call. */
let stamp = { second: -1, text: '' };
function amzDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== stamp.second) stamp = { second, text: new Date(second * 1000).toISOString().replace(/[-:]|\.\d{3}/g, '') };
  return stamp.text;
}

/** Client configuration for `endpoint`: unsigned on loopback, the SDK's defaults elsewhere. */
export function loopbackClientConfig(endpoint: string | undefined, service: string): { endpoint?: string; credentials?: typeof CREDENTIALS; httpAuthSchemes?: HttpAuthScheme[] } {
  if (!isLoopback(endpoint)) return endpoint ? { endpoint } : {};
  return {
    endpoint,
    credentials: CREDENTIALS,
    httpAuthSchemes: [{
      schemeId: 'aws.auth#sigv4',
      identityProvider: () => async () => CREDENTIALS as Identity,
      signer: {
        async sign(request: HttpRequest) {
          const date = amzDate();
          request.headers['x-amz-date'] = date;
          request.headers.authorization = `AWS4-HMAC-SHA256 Credential=local/${date.slice(0, 8)}/local/${service}/aws4_request, SignedHeaders=host, Signature=unsigned`;
          return request;
        },
      },
    }],
  };
}

export type SdkRequestHandler = RequestHandler<HttpRequest, HttpResponse>;

/**
 * Loopback endpoints the local runtime serves inside the caller's own thread (its embedded DynamoDB, for the
 * ledger writer that runs on the store's thread): their clients hand requests to this handler instead of a socket.
 */
const inProcess = new Map<string, SdkRequestHandler>();

/** Returns the function that stops it (a later store may reuse the port). */
export function serveInProcess(endpoint: string, handler: SdkRequestHandler): () => void {
  inProcess.set(endpoint, handler);
  return () => {
    if (inProcess.get(endpoint) === handler) inProcess.delete(endpoint);
  };
}

/** The in-process handler serving `endpoint` in this thread, if any. */
export const inProcessHandler = (endpoint: string | undefined): SdkRequestHandler | undefined =>
  endpoint === undefined ? undefined : inProcess.get(endpoint);

/**
 * How the local runtime's SDK clients reach its endpoints: unsigned on loopback, and in this thread where the
 * endpoint is served in-process (the embedded store, on its own thread). Given to lambdas/sdk.ts at start-up.
 */
export const localClientSettings: SdkClientFactory = (service, endpoint) => {
  const handler = inProcessHandler(endpoint);
  return { ...loopbackClientConfig(endpoint, service), ...(handler ? { requestHandler: handler } : {}) };
};
