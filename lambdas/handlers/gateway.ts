import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Writable } from 'node:stream';
import { newRequestId, type HttpRequest, type ResponseSink } from '../app/http';
import { routeV1 } from '../app/router';
import { catalog } from '../core/catalog';
import { fromAuthorizerContext, type Principal } from '../core/principal';

// A broken catalog (NI_CATALOG_FILE) fails the function's init with the message naming the bad entry, rather
// than every request with a 500.
catalog();

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

// Not an async function awaiting routeV1: its frame would hold the event and the stream while the request settles.
export const handler = awslambda.streamifyResponse<APIGatewayProxyEvent>((event, responseStream) =>
  routeV1(toHttpRequest(event), streamSink(responseStream)));
