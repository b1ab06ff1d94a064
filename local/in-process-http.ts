import type { HttpRequest } from '@smithy/types';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { MessagePort } from 'node:worker_threads';
import type { SdkRequestHandler } from './loopback';
import { answerer, caller } from './port-rpc';

/*
 * SDK request handlers that hand each request to a Node HTTP request listener (the embedded DynamoDB's) with no
 * socket in between: the SDK still serializes, sends and parses the very bytes it would send over HTTP, and the
 * listener answers them as it would a socket's, without the loopback exchange's share of each call's CPU.
 * - `listenerHandler`: the listener runs in the caller's thread (the ledger writer, on the store's thread);
 * - `portHandler` / `servePort`: the caller's thread (the one serving requests) posts to the store's thread.
 */

/** A request as the listener gets it; what crosses threads. */
interface Asked {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

interface Answered {
  statusCode: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

function asked(request: HttpRequest): Asked {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  const query = new URLSearchParams(request.query as Record<string, string> | undefined).toString();
  // The SDK's JSON body is a Uint8Array, passed on as it is.
  const body = request.body as string | Uint8Array | undefined;
  return {
    method: request.method,
    url: query ? `${request.path}?${query}` : request.path,
    headers,
    body: typeof body === 'string' ? Buffer.from(body) : body?.byteLength ? body : undefined,
  };
}

/**
 * Runs `listener` on one request. It sees a request with method, url, headers and the body ('data', then
 * 'end'), and a response with statusCode, setHeader, writeHead and end(body): what dynalite uses.
 */
function answer(listener: RequestListener, request: Asked): Promise<Answered> {
  return new Promise((resolve, reject) => {
    const req = Object.assign(new EventEmitter(), { method: request.method, url: request.url, headers: request.headers });
    const headers: Record<string, string> = {};
    const res = {
      statusCode: 200,
      setHeader(name: string, value: unknown) {
        headers[name.toLowerCase()] = String(value);
      },
      writeHead(status: number, more?: Record<string, unknown>) {
        res.statusCode = status;
        for (const [name, value] of Object.entries(more ?? {})) res.setHeader(name, value);
      },
      end(body?: string | Uint8Array) {
        resolve({ statusCode: res.statusCode, headers, body: typeof body === 'string' ? Buffer.from(body) : body ?? new Uint8Array() });
      },
    };
    const run = (step: () => void) => {
      try {
        step();
      } catch (err) {
        reject(err);
      }
    };
    run(() => listener(req as unknown as IncomingMessage, res as unknown as ServerResponse));
    // As from a socket: after the listener has subscribed.
    queueMicrotask(() => run(() => {
      if (request.body) req.emit('data', Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength));
      req.emit('end');
    }));
  });
}

/** Calls `listener` in this thread. */
export function listenerHandler(listener: RequestListener): SdkRequestHandler {
  return { handle: (request) => answer(listener, asked(request)).then((response) => ({ response })) };
}

/**
 * A copy with a buffer of its own: posting a view on Node's shared Buffer pool would copy the whole pool, and only
 * a buffer of its own can be transferred rather than copied.
 */
const exact = (bytes: Uint8Array) => new Uint8Array(bytes);

/** Answers the requests `port` brings (from `portHandler` in another thread) with `listener`. */
export function servePort(port: MessagePort, listener: RequestListener): void {
  answerer<Asked, Answered>(port, async (request) => {
    const response = await answer(listener, request);
    return { ...response, body: exact(response.body) };
  }, (response) => [response.body.buffer as ArrayBuffer]);
}

/** Sends each request through `port` to the thread serving it (`servePort`). */
export function portHandler(port: MessagePort): SdkRequestHandler {
  const call = caller<Asked, Answered>(port, (request) => (request.body ? [request.body.buffer as ArrayBuffer] : []));
  return {
    handle: (request) => {
      const a = asked(request);
      return call({ ...a, body: a.body && exact(a.body) }).then((response) => ({ response }));
    },
  };
}
