import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Writable } from 'node:stream';
import { newRequestId, type HttpRequest, type ResponseSink } from '../app/http';
import { composeGateway } from '../compose';
import { fromAuthorizerContext, type Principal } from '../core/principal';

/** `/v1/*` behind API Gateway with response streaming: adapts the proxy event and the response stream. */

function principalOf(event: APIGatewayProxyEvent): Principal | null {
  try {
    return fromAuthorizerContext(event.requestContext.authorizer);
  } catch {
    return null;
  }
}

export function toHttpRequest(event: APIGatewayProxyEvent): HttpRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) headers[k.toLowerCase()] = v ?? undefined;
  return {
    method: event.httpMethod,
    path: event.path,
    headers,
    query: (event.queryStringParameters ?? {}) as Record<string, string | undefined>,
    body: event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '',
    requestId: event.requestContext.requestId || newRequestId(),
    principal: principalOf(event),
  };
}

function streamSink(responseStream: Writable): ResponseSink {
  let out: Writable | null = null;
  return {
    start(statusCode, headers) {
      // The prelude goes out with the first write.
      out = awslambda.HttpResponseStream.from(responseStream, { statusCode, headers });
    },
    write(chunk) {
      out!.write(chunk);
    },
    end() {
      out!.end();
    },
    onClose(listener) {
      responseStream.once('close', listener);
    },
  };
}

// Built at init: a broken catalog (NI_CATALOG_FILE) or configuration fails the function's init with a message
// naming it, rather than every request with a 500.
const gateway = composeGateway();

// Not an async function awaiting the gateway: its frame would hold the event and the stream while the records
// are written.
export const handler = awslambda.streamifyResponse<APIGatewayProxyEvent>((event, responseStream) =>
  gateway.handleV1(toHttpRequest(event), streamSink(responseStream)));
