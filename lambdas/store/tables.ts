import { config } from '../config';

/**
 * The gateway's DynamoDB tables. Every table has the same key schema (string `pk` + string `sk`) so the CDK
 * stack and the embedded local store create them from this one description.
 */
export const TABLES = {
  /** API keys: `pk = "hash#<sha256>"` holds the record, `pk = "id#<keyId>"` points to it. */
  keys: { env: 'NI_KEYS_TABLE', local: 'ni-keys' },
  /** Spend days, reservations, per-request usage records and daily totals. */
  usage: { env: 'NI_USAGE_TABLE', local: 'ni-usage' },
  /** Per-key hash chains of custody entries and their signed checkpoints. */
  ledger: { env: 'NI_LEDGER_TABLE', local: 'ni-ledger' },
} as const;

export type TableName = keyof typeof TABLES;
export const KEY_SCHEMA = { partitionKey: 'pk', sortKey: 'sk' } as const;

/** The physical table name for this process (set by the stack, or by the local runtime). */
export function tableName(t: TableName): string {
  const name = config().tables[t];
  if (!name) throw new Error(`${TABLES[t].env} is not set`);
  return name;
}
