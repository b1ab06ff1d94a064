import './awslambda'; // before any handler module: they call awslambda.streamifyResponse when loaded
import type { APIGatewayProxyEvent, APIGatewayProxyResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GATEWAY_ERRORS, MAX_REQUEST_BODY_BYTES, newRequestId, requestHeaders } from '../lambdas/app/http';
import { asGatewayError, GatewayError } from '../lambdas/core/errors';
import { handler as authorizer } from '../lambdas/handlers/authorizer';
import { handler as billing } from '../lambdas/handlers/billing';
import { handler as gateway } from '../lambdas/handlers/gateway';
import { portalHandler } from '../lambdas/handlers/portal';
import { handler as portalAssets } from '../lambdas/handlers/portal-assets';
import { handler as usage } from '../lambdas/handlers/usage';
import { logger } from '../lambdas/observability';
import { findRoute, HEALTH_PATH, type RouteSpec } from '../lambdas/routes';
import { LocalResponseStream } from './awslambda';
import { localPortalAuthenticator } from './portal-auth';

/*
 * The API Gateway of the local runtime: each HTTP request becomes the REST proxy event API Gateway would send,
 * the REQUEST authorizer runs first where the stack puts one, and the route's handler — the same code Lambda
 * runs — answers, streamed byte by byte for the streaming one.
 */

type ProxyHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
type StreamingHandler = (event: APIGatewayProxyEvent, stream: LocalResponseStream, context: Context) => Promise<void>;

/** The handler modules the route table names, as Lambda loads them. */
const HANDLERS: Record<RouteSpec['handler'], StreamingHandler | ProxyHandler> = {
  gateway: gateway as unknown as StreamingHandler,
  billing: billing as unknown as ProxyHandler,
  usage: usage as unknown as ProxyHandler,
  // The same portal API, signed in with the local runtime's one-time links instead of Cognito.
  portal: portalHandler(localPortalAuthenticator()) as unknown as ProxyHandler,
  'portal-assets': portalAssets as unknown as ProxyHandler,
};

const ACCOUNT = '000000000000';
const STAGE = 'local';

function lambdaContext(requestId: string, functionName: string): Context {
  const deadline = Date.now() + 15 * 60_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:ca-central-1:${ACCOUNT}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function sendError(res: ServerResponse, e: GatewayError, requestId: string): void {
  res.writeHead(e.status, { ...requestHeaders(requestId), 'content-type': 'application/json', ...e.headers });
  res.end(JSON.stringify(e.toBody()));
}

/**
 * Reads the body, refusing more than Lambda would accept (API Gateway's REQUEST_TOO_LARGE answers this in AWS).
 * Events rather than `for await`: the async iterator showed in the request path's profile.
 */
function readBody(req: IncomingMessage): Promise<string | null> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_REQUEST_BODY_BYTES) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BODY_BYTES) return void chunks.push(chunk);
      req.off('data', onData).resume(); // the rest is read and dropped, so the 413 can be answered
      resolve(null);
    };
    req.on('data', onData).once('end', () => resolve(Buffer.concat(chunks).toString('utf8'))).once('error', reject);
  });
}

function proxyEvent(req: IncomingMessage, url: URL, route: RouteSpec, body: string, requestId: string): APIGatewayProxyEvent {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const query = url.searchParams.size ? Object.fromEntries(url.searchParams) : null;
  return {
    resource: route.path,
    path: url.pathname,
    httpMethod: req.method ?? 'GET',
    headers,
    multiValueHeaders: {},
    queryStringParameters: query,
    multiValueQueryStringParameters: null,
    pathParameters: route.path.endsWith('/{proxy+}') ? { proxy: url.pathname.slice(route.path.length - '{proxy+}'.length) } : null,
    stageVariables: null,
    body: body || null,
    isBase64Encoded: false,
    requestContext: {
      accountId: ACCOUNT,
      apiId: 'local',
      stage: STAGE,
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: route.path,
      httpMethod: req.method ?? 'GET',
      // What the browser asked for: locally there is no stage prefix in the URL (as behind a custom domain).
      path: url.pathname,
      protocol: 'HTTP/1.1',
      authorizer: null,
      identity: { sourceIp: req.socket.remoteAddress ?? '127.0.0.1' } as APIGatewayProxyEvent['requestContext']['identity'],
    },
  };
}

/**
 * Runs the authorizer as API Gateway does: a thrown "Unauthorized" is 401, any other failure 500 (AWS's
 * AUTHORIZER_CONFIGURATION_ERROR), a Deny policy 403, an Allow passes its context on (stringified, as API Gateway
 * hands it to the integration).
 */
async function authorize(event: APIGatewayProxyEvent): Promise<Record<string, string>> {
  const authEvent = {
    type: 'REQUEST',
    methodArn: `arn:aws:execute-api:ca-central-1:${ACCOUNT}:local/${STAGE}/${event.httpMethod}${event.path}`,
    resource: event.resource,
    path: event.path,
    httpMethod: event.httpMethod,
    headers: event.headers,
    multiValueHeaders: {},
    queryStringParameters: event.queryStringParameters,
    multiValueQueryStringParameters: null,
    pathParameters: event.pathParameters,
    stageVariables: null,
    requestContext: event.requestContext,
  } as unknown as APIGatewayRequestAuthorizerEvent;
  let result: { policyDocument: { Statement: { Effect: string }[] }; context?: Record<string, unknown> };
  try {
    result = await (authorizer as unknown as (e: APIGatewayRequestAuthorizerEvent, c: Context) => Promise<typeof result>)(authEvent, lambdaContext(event.requestContext.requestId, 'authorizer'));
  } catch (err) {
    if (err instanceof Error && err.message === 'Unauthorized') throw GATEWAY_ERRORS.invalidApiKey();
    // The error only: the event (and with it the Authorization header) stays out of the logs.
    logger.error('authorizer failed', { requestId: event.requestContext.requestId, error: err as Error });
    throw GATEWAY_ERRORS.authorizerFailure();
  }
  if (!result.policyDocument.Statement.every((s) => s.Effect === 'Allow')) throw GATEWAY_ERRORS.accessDenied();
  return Object.fromEntries(Object.entries(result.context ?? {}).map(([k, v]) => [k, String(v)]));
}

async function handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://local');
  const route = findRoute(url.pathname);
  const health = url.pathname === HEALTH_PATH;
  // API Gateway answers preflights on every resource itself (a mock integration): no key, no handler. Not on the
  // portal's (same-origin only): there the handler gets them, as API Gateway's ANY method would pass them on.
  if (req.method === 'OPTIONS' && ((route && route.cors) || health)) return void res.writeHead(204, requestHeaders(requestId)).end();
  if (health) return void res.writeHead(200, { ...requestHeaders(requestId), 'content-type': 'application/json' }).end('{"status":"ok"}');
  if (!route) return sendError(res, GATEWAY_ERRORS.unknownUrl(), requestId);
  const body = await readBody(req);
  if (body === null) {
    return sendError(res, GATEWAY_ERRORS.requestTooLarge(), requestId);
  }
  const event = proxyEvent(req, url, route, body, requestId);
  if (route.auth) event.requestContext.authorizer = await authorize(event);
  const context = lambdaContext(requestId, route.handler);
  if (route.streaming) {
    // Returned, not awaited: while the handler records after its response, this frame need not hold the request.
    return (HANDLERS[route.handler] as StreamingHandler)(event, new LocalResponseStream(res), context);
  }
  const result = await (HANDLERS[route.handler] as ProxyHandler)(event, context);
  res.writeHead(result.statusCode, result.headers as Record<string, string>);
  res.end(result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
}

export interface LocalServer {
  url: string;
  port: number;
  server: Server;
  /** Resolves once no handler is running: every answered request's after-response work is done. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export async function startServer(opts: { port?: number; host?: string } = {}): Promise<LocalServer> {
  // Handlers still running, after-response work included (the client may already have its answer).
  const running = new Set<Promise<void>>();
  const server = createServer((req, res) => {
    const requestId = newRequestId();
    // Held until the response has ended, not for as long as the handler settles after it (see lambdas/app/chat.ts).
    let answering: ServerResponse | null = res;
    res.once('close', () => {
      answering = null;
    });
    const run: Promise<void> = handle(req, res, requestId).catch((err) => {
      if (!(err instanceof GatewayError)) logger.error('request failed', { requestId, error: err as Error });
      if (answering && !answering.headersSent) sendError(answering, asGatewayError(err), requestId);
      else answering?.destroy();
    }).finally(() => running.delete(run));
    running.add(run);
  });
  server.keepAliveTimeout = 65_000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(opts.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    server,
    async idle() {
      while (running.size) await Promise.all([...running]);
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
