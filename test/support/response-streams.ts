import type { Writable } from 'node:stream';

type From = (stream: Writable, prelude: unknown) => Writable;
/** The local `awslambda` shim's (local/awslambda.ts), installed once the gateway has started. */
const shim = () => (globalThis as unknown as { awslambda: { HttpResponseStream: { from: From } } }).awslambda.HttpResponseStream;

/** The response streams the local runtime hands the streaming handler, seen as the handler attaches its prelude. */
export interface ResponseStreams {
  /** Each one so far, held weakly (whether the gateway lets go of it is for the test to see). */
  readonly streams: WeakRef<Writable>[];
  /**
   * Resolves once the last one has closed: its response ended, or its client went away (then the handler's own
   * 'close' listener has run: it was added before this one).
   */
  lastClosed(): Promise<void>;
  restore(): void;
}

/** Watches the response streams of the gateway started in this process from now on. */
export function watchResponseStreams(): ResponseStreams {
  const streams: WeakRef<Writable>[] = [];
  const closed: Promise<void>[] = [];
  const from = shim().from;
  shim().from = (stream, prelude) => {
    streams.push(new WeakRef(stream));
    closed.push(new Promise((resolve) => stream.once('close', () => resolve())));
    return from(stream, prelude);
  };
  return {
    streams,
    lastClosed: () => closed.at(-1) ?? Promise.reject(new Error('no response stream yet')),
    restore() {
      shim().from = from;
    },
  };
}
