import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';

/*
 * A local stand-in for the `awslambda` globals of the Lambda Node.js runtime, so the streaming handlers run
 * unchanged: streamifyResponse marks a handler as streaming, HttpResponseStream.from attaches the status and
 * headers, which go out with the first write — as the runtime's prelude does.
 */

const STREAMING = Symbol.for('ni.local.streaming');

type Prelude = { statusCode: number; headers?: Record<string, string> };

/** The response stream a streaming handler writes to, backed by the HTTP response. */
export class LocalResponseStream extends Writable {
  prelude: Prelude = { statusCode: 200 };

  constructor(private readonly res: ServerResponse) {
    super({ decodeStrings: false });
    // A client that disconnects mid-stream shows up as 'close' on the stream, as in Lambda.
    res.once('close', () => {
      if (!res.writableFinished) this.destroy();
    });
    this.on('error', () => undefined); // writes after a disconnect are dropped, not fatal
  }

  private head(): void {
    if (!this.res.headersSent) this.res.writeHead(this.prelude.statusCode, this.prelude.headers);
  }

  override _write(chunk: string | Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.head();
    // Deltas written in the same turn of the event loop leave in one packet rather than one syscall each. The
    // uncork waits for the check phase, after process.nextTick: an end() in the same turn (a short answer
    // relayed from one upstream read) then flushes the data and the final chunk together.
    if (this.res.writableCorked === 0) {
      this.res.cork();
      setImmediate(() => this.res.uncork());
    }
    if (this.res.write(chunk)) done();
    else this.res.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.head();
    this.res.end(done);
  }
}

export function isStreamingHandler(fn: unknown): boolean {
  return typeof fn === 'function' && (fn as unknown as Record<symbol, unknown>)[STREAMING] === true;
}

export function installAwsLambdaShim(): void {
  // Other libraries (powertools' invoke store) may already have put an `awslambda` object there: extend it.
  const g = globalThis as unknown as { awslambda?: Record<string, unknown> };
  if (typeof g.awslambda?.streamifyResponse === 'function') return;
  g.awslambda = {
    ...g.awslambda,
    streamifyResponse<F extends object>(handler: F): F {
      Object.defineProperty(handler, STREAMING, { value: true });
      return handler;
    },
    HttpResponseStream: {
      from(stream: LocalResponseStream, prelude: Prelude): LocalResponseStream {
        stream.prelude = prelude;
        return stream;
      },
    },
  };
}

installAwsLambdaShim();
