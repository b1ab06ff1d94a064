/**
 * The ledger writer off the thread serving requests, as it is a Lambda of its own in AWS: it runs on the
 * embedded DynamoDB's thread (local/dynamo.ts), so its store calls never cross threads and the request thread
 * only hands deliveries over. This is the request thread's side: each delivery is settled with the handler's
 * outcome, so the bus's retries and dead letters work as before. The thread runs ledger-writer-thread.ts.
 */
import type { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import type { BusEvent } from './bus';

/** One delivery handed to the thread, and its outcome (`error`: the handler threw, so the bus retries). */
export interface Delivery { type: 'deliver'; id: number; event: BusEvent }
export interface Outcome { type: 'delivered'; id: number; error?: string }

export type Deliver = (event: BusEvent) => Promise<void>;

/**
 * Loads the ledger writer onto `thread` with this process's environment (store endpoint, table names, state
 * directory). Run from TypeScript sources (tsx, jest), the thread registers tsx's require hook first; run from
 * the bundle `npm start` builds (local/build.ts), it loads the writer's own bundle beside it.
 */
export function loadLedgerWriter(thread: Worker): Deliver {
  const fromSources = __filename.endsWith('.ts');
  thread.postMessage({
    type: 'load',
    env: { ...process.env }, // jest's process.env is its own copy: pass the values, not the process's
    entry: join(__dirname, fromSources ? 'ledger-writer-thread.ts' : 'ledger-writer-thread.js'),
    tsx: fromSources ? require.resolve('tsx/cjs/api') : null,
  });
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  let next = 0;
  thread.on('message', (m: Outcome) => {
    if (m.type !== 'delivered') return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error === undefined) p?.resolve();
    else p?.reject(new Error(m.error));
  });
  thread.on('exit', () => {
    for (const p of pending.values()) p.reject(new Error('the ledger writer thread stopped'));
    pending.clear();
  });
  return (event) => new Promise<void>((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    thread.postMessage({ type: 'deliver', id, event } satisfies Delivery);
  });
}
