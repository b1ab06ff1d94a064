/** Inside the embedded DynamoDB's thread (loaded by store-thread.ts): the ledger writer, and the store's port. */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { RequestListener } from 'node:http';
import { handler } from '../lambdas/handlers/ledger-writer';
import { serveInProcess } from '../lambdas/loopback';
import { listenerHandler, servePort } from './in-process-http';
import { answerer } from './port-rpc';
import type { StoreThreadPorts } from './store-thread';

/** Called by local/dynamo.ts's thread with dynalite's request listener. */
export function start(store: RequestListener, ports: StoreThreadPorts): void {
  // The ledger writer's store calls go straight to dynalite, which runs in this thread.
  serveInProcess(process.env.NI_DYNAMODB_ENDPOINT!, listenerHandler(store));
  servePort(ports.store, store);
  // One handler invocation per batch; the failed records (all, on a throw) are the bus's cue to redeliver.
  answerer<SQSEvent, SQSBatchResponse>(ports.deliveries, handler);
}
