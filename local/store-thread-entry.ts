/** Inside the embedded DynamoDB's thread (loaded by store-thread.ts): the ledger writer, and the store's port. */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { RequestListener } from 'node:http';
import { config } from '../lambdas/config';
import { handler } from '../lambdas/handlers/ledger-writer';
import { useSdkClientFactory } from '../lambdas/sdk';
import { localClientSettings, serveInProcess } from './loopback';
import { listenerHandler, servePort } from './in-process-http';
import { answerer } from './port-rpc';
import type { StoreThreadPorts } from './store-thread';

/** Called by local/dynamo.ts's thread with dynalite's request listener. */
export function start(store: RequestListener, ports: StoreThreadPorts): void {
  // The ledger writer's store calls go straight to dynalite, which runs in this thread.
  useSdkClientFactory(localClientSettings);
  serveInProcess(config().endpoints.dynamodb!, listenerHandler(store));
  servePort(ports.store, store);
  // One handler invocation per batch; the failed records (all, on a throw) are the bus's cue to redeliver.
  answerer<SQSEvent, SQSBatchResponse>(ports.deliveries, (batch) => handler(batch, {} as Context));
}
