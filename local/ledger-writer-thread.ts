/** Inside the ledger writer's thread (loaded by ledger-thread.ts): one handler invocation per delivery. */
import type { Context } from 'aws-lambda';
import { parentPort } from 'node:worker_threads';
import { handler } from '../lambdas/handlers/ledger-writer';
import type { BusEvent } from './bus';
import type { Delivery, Outcome } from './ledger-thread';

const invoke = handler as (e: BusEvent, c: Context) => Promise<unknown>;

parentPort!.on('message', (m: Delivery | { type: string }) => {
  if (m.type !== 'deliver') return;
  const { id, event } = m as Delivery;
  invoke(event, {} as Context).then(
    () => parentPort!.postMessage({ type: 'delivered', id } satisfies Outcome),
    (err: unknown) => parentPort!.postMessage({ type: 'delivered', id, error: err instanceof Error ? err.message : String(err) } satisfies Outcome),
  );
});
