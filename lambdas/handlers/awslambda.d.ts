import type { Context } from 'aws-lambda';
import type { Writable } from 'node:stream';

/** The globals the Lambda Node.js runtime provides for response streaming (the local runtime shims them). */
declare global {
  namespace awslambda {
    type StreamingHandler<E> = (event: E, responseStream: Writable, context: Context) => Promise<void>;
    function streamifyResponse<E>(handler: StreamingHandler<E>): StreamingHandler<E>;
    const HttpResponseStream: {
      from(stream: Writable, prelude: { statusCode: number; headers?: Record<string, string> }): Writable;
    };
  }
}
