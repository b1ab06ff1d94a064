import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { mkdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { KEY_SCHEMA, TABLES } from '../lambdas/store/tables';
import { reloadConfig } from '../lambdas/config';
import { useSdkClientFactory } from '../lambdas/sdk';
import { localClientSettings } from './loopback';

/**
 * dynalite runs in a worker thread: the gateway's clients reach it over loopback HTTP as they would reach
 * DynamoDB, and the store's own CPU (LevelDB, number parsing) stays off the thread that serves requests.
 * The local runtime loads more onto this thread (`{type: 'load'}`, see store-thread.ts): its ledger writer, and
 * the port its request thread's store calls come through. The loaded module's `start` gets dynalite's request
 * listener to answer them with.
 */
const DYNALITE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const server = require(workerData.dynalite)({ path: workerData.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.once('error', (err) => parentPort.postMessage({ error: err.message }));
server.listen(workerData.port, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
let loaded = {};
parentPort.on('message', (m) => {
  if (m.type === 'close') {
    for (const port of Object.values(loaded)) port.close();
    server.close(() => parentPort.close());
    server.closeAllConnections();
  } else if (m.type === 'load') {
    loaded = m.ports;
    Object.assign(process.env, m.env);
    if (m.tsx) require(m.tsx).register();
    require(m.entry).start(server.listeners('request')[0], m.ports);
  }
});
`;

/**
 * The store's thread allocates briskly (HTTP-less requests, LevelDB values, ledger blocks) but keeps little, so a
 * small young generation (8 MB semi-spaces, as the thread serving requests gets from `npm start`'s node flags)
 * costs it no CPU and the runtime less memory.
 */
const STORE_YOUNG_GENERATION_MB = 24;

async function startDynaliteWorker(path: string | undefined, port: number): Promise<{ port: number; thread: Worker; stop(): Promise<void> }> {
  const worker = new Worker(DYNALITE_WORKER, { eval: true, workerData: { dynalite: require.resolve('dynalite'), path, port }, resourceLimits: { maxYoungGenerationSizeMb: STORE_YOUNG_GENERATION_MB } });
  const ready = await new Promise<{ port?: number; error?: string }>((resolve, reject) => worker.once('message', resolve).once('error', reject));
  if (ready.error !== undefined) {
    await worker.terminate();
    throw new Error(`embedded DynamoDB failed to start: ${ready.error}`);
  }
  return {
    port: ready.port!,
    thread: worker,
    stop: () => new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.postMessage({ type: 'close' });
    }),
  };
}

export interface EmbeddedDynamo {
  endpoint: string;
  /** Table names by role, as the handlers read them from NI_*_TABLE. */
  tables: Record<keyof typeof TABLES, string>;
  /** Points this process's store clients here: NI_DYNAMODB_ENDPOINT, NI_*_TABLE and the local client settings. */
  applyEnv(): void;
  /** The thread dynalite runs on. */
  thread: Worker;
  close(): Promise<void>;
}

/**
 * Starts dynalite on loopback (port 0 unless given) and creates the gateway's tables. With `dataDir` the data
 * persists on disk (LevelDB); without it the store lives in memory (tests).
 */
export async function startEmbeddedDynamo(opts: { dataDir?: string; port?: number } = {}): Promise<EmbeddedDynamo> {
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const server = await startDynaliteWorker(opts.dataDir, opts.port ?? 0);
  const endpoint = `http://127.0.0.1:${server.port}`;
  const client = new DynamoDBClient({ endpoint, region: 'ca-central-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const tables = Object.fromEntries(Object.entries(TABLES).map(([role, t]) => [role, t.local])) as EmbeddedDynamo['tables'];
  for (const name of Object.values(tables)) {
    try {
      await client.send(new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: KEY_SCHEMA.partitionKey, AttributeType: 'S' },
          { AttributeName: KEY_SCHEMA.sortKey, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: KEY_SCHEMA.partitionKey, KeyType: 'HASH' },
          { AttributeName: KEY_SCHEMA.sortKey, KeyType: 'RANGE' },
        ],
      }));
    } catch (err) {
      if (!(err instanceof ResourceInUseException)) throw err; // kept from an earlier run in dataDir
    }
  }
  client.destroy();
  return {
    endpoint,
    tables,
    applyEnv() {
      process.env.NI_DYNAMODB_ENDPOINT = endpoint;
      for (const [role, t] of Object.entries(TABLES)) process.env[t.env] = tables[role as keyof typeof TABLES];
      useSdkClientFactory(localClientSettings);
      reloadConfig();
    },
    thread: server.thread,
    close: () => server.stop(),
  };
}
