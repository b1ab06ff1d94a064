import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { KEY_SCHEMA, TABLES } from '../lambdas/store/tables';

// dynalite ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite: (opts: { path?: string; createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => import('node:http').Server = require('dynalite');

export interface EmbeddedDynamo {
  endpoint: string;
  /** Table names by role, as the handlers read them from NI_*_TABLE. */
  tables: Record<keyof typeof TABLES, string>;
  /** Sets NI_DYNAMODB_ENDPOINT and NI_*_TABLE for this process. */
  applyEnv(): void;
  close(): Promise<void>;
}

/**
 * Starts dynalite on loopback (port 0 unless given) and creates the gateway's tables. With `dataDir` the data
 * persists on disk (LevelDB); without it the store lives in memory (tests).
 */
export async function startEmbeddedDynamo(opts: { dataDir?: string; port?: number } = {}): Promise<EmbeddedDynamo> {
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const server = dynalite({ path: opts.dataDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(opts.port ?? 0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
