import type { HttpAuthScheme, HttpRequest, Identity } from '@smithy/types';

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
