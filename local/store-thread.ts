/**
 * The embedded DynamoDB's thread (local/dynamo.ts) also runs the ledger writer, off the thread serving requests
 * as it is a Lambda of its own in AWS. This is the request thread's side. It loads store-thread-entry.ts onto
 * that thread with two ports:
 * - deliveries: each batch of the bus's ledger queue is answered with the ledger writer's outcome (its failed
 *   records), so the bus's redeliveries and dead letters work as over SQS;
 * - store calls: this thread's DynamoDB client sends its requests through a port instead of loopback HTTP
 *   (in-process-http.ts); the writer's own store calls stay in its thread. The HTTP endpoint stays open for
 *   everyone else (the `ni` CLI, the AWS CLI).
 */
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { serveInProcess } from './loopback';
import type { Deliver } from './bus';
import type { EmbeddedDynamo } from './dynamo';
import { portHandler } from './in-process-http';
import { caller } from './port-rpc';

/** What the thread's `start` gets besides dynalite's request listener. */
export interface StoreThreadPorts {
  deliveries: MessagePort;
  store: MessagePort;
}

/**
 * Loads the thread's side with this process's environment (store endpoint, table names, state directory). Run
 * from TypeScript sources (tsx, jest), the thread registers tsx's require hook first; run from the bundle `npm
 * start` builds (local/build.ts), it loads its own bundle beside this one. Call before the first store call.
 */
export function loadStoreThread(dynamo: Pick<EmbeddedDynamo, 'endpoint' | 'thread'>): Deliver {
  const fromSources = __filename.endsWith('.ts');
  const deliveries = new MessageChannel();
  const store = new MessageChannel();
  dynamo.thread.postMessage({
    type: 'load',
    env: { ...process.env }, // jest's process.env is its own copy: pass the values, not the process's
    entry: join(__dirname, fromSources ? 'store-thread-entry.ts' : 'store-thread-entry.js'),
    tsx: fromSources ? require.resolve('tsx/cjs/api') : null,
    ports: { deliveries: deliveries.port2, store: store.port2 } satisfies StoreThreadPorts,
  }, [deliveries.port2, store.port2]);
  const stop = serveInProcess(dynamo.endpoint, portHandler(store.port1));
  store.port1.once('close', stop);
  return caller<SQSEvent, SQSBatchResponse>(deliveries.port1);
}
