import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { Writable } from 'node:stream';
import { newRequestId, requestHeaders, requestIdHeaders, type HttpRequest, type ResponseSink } from '../app/http';
import { asGatewayError, type GatewayError } from '../core/errors';
import { fromAuthorizerContext, type Principal } from '../core/principal';
import { logger } from '../observability';

/*
 * The one way to write a handler: a middy function with powertools' logger context (every log line carries the
 * Lambda request id and whether it was a cold start). HTTP handlers take the gateway's HttpRequest; their answers
 * carry the request id and CORS headers, and their errors OpenAI's shape.
 */

/** Any handler: `fn` wrapped with the logger's Lambda context. */
export function lambdaHandler<E, R>(fn: (event: E, context: Context) => Promise<R>) {
  return middy<E, R>(fn, { timeoutEarlyInMillis: 0 }).use(injectLambdaContext(logger, { resetKeys: true }));
}

function principalOf(event: APIGatewayProxyEvent): Principal | null {
  try {
    return fromAuthorizerContext(event.requestContext.authorizer);
  } catch {
    return null;
  }
}

/** The API Gateway proxy event as the gateway's HttpRequest: header names lower-cased once, here. */
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

/** What an HTTP handler answers: a status, a JSON body (or an already serialized one) and extra headers. */
export interface JsonAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * A Lambda proxy handler over the gateway's HttpRequest. A thrown error becomes OpenAI's error shape (5xx logged
 * with the request id, never the request). `cors: false` (the portal): no CORS headers, same-origin use only.
 */
export function httpHandler(fn: (req: HttpRequest) => Promise<JsonAnswer>, opts: { cors: boolean; errorHeaders?: Record<string, string> } = { cors: true }) {
  return lambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>(async (event) => {
    const req = toHttpRequest(event);
    let answer: JsonAnswer;
    try {
      answer = await fn(req);
    } catch (err) {
      const e: GatewayError = asGatewayError(err);
      if (e.status >= 500) logger.error('request failed', { requestId: req.requestId, code: e.code, error: err as Error });
      answer = { status: e.status, body: e.toBody(), headers: { ...opts.errorHeaders, ...e.headers } };
    }
    const body = answer.body === null ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    return {
      statusCode: answer.status,
      headers: { ...(opts.cors ? requestHeaders : requestIdHeaders)(req.requestId), ...(body ? { 'content-type': 'application/json' } : {}), ...answer.headers },
      body,
    };
  });
}

/** The response stream Lambda hands a streaming handler, as a ResponseSink. */
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

/**
 * A streaming handler (Lambda response streaming): `fn` writes to the sink and resolves once its after-response
 * work is done, which the invocation waits for.
 */
export function streamingHandler(fn: (req: HttpRequest, sink: ResponseSink) => Promise<void>) {
  const handler = lambdaHandler<Partial<StreamingInvocation>, void>((invocation) => {
    const { event, responseStream } = invocation as StreamingInvocation;
    // middy keeps its event until the handler resolves, after the response: the event and the stream are let go
    // once the response has them, as `fn` lets go of them itself.
    delete invocation.event;
    delete invocation.responseStream;
    return fn(toHttpRequest(event), streamSink(responseStream));
  });
  return awslambda.streamifyResponse<APIGatewayProxyEvent>((event, responseStream, context) => handler({ event, responseStream }, context));
}

interface StreamingInvocation {
  event: APIGatewayProxyEvent;
  responseStream: Writable;
}
