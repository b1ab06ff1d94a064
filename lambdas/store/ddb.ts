import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type BatchGetCommandOutput, DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { batches } from './batching';
import { config } from '../config';
import { keepAliveHandler, sdkClientSettings } from '../sdk';

let doc: DynamoDBDocumentClient | undefined;

/** One document client per process; `NI_DYNAMODB_ENDPOINT` points it elsewhere (the embedded local store). */
export function ddb(): DynamoDBDocumentClient {
  if (!doc) {
    const { region, endpoints } = config();
    const client = new DynamoDBClient({
      region,
      requestHandler: keepAliveHandler({ maxSockets: 64 }),
      ...sdkClientSettings('dynamodb', endpoints.dynamodb),
    });
    doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }
  return doc;
}

/** Forget the cached client (tests that restart the embedded store on a new port). */
export function resetDdb(): void {
  doc?.destroy();
  doc = undefined;
}

/** The items at `keys` that exist, 100 keys per BatchGetItem (DynamoDB's limit), unprocessed keys asked again. */
export async function batchGetItems(table: string, keys: { pk: string; sk: string }[]): Promise<Record<string, any>[]> {
  const items: Record<string, any>[] = [];
  for (const batch of batches(keys, 100)) {
    let pending: Record<string, any>[] | undefined = batch;
    while (pending?.length) {
      const out: BatchGetCommandOutput = await ddb().send(new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }));
      items.push(...(out.Responses?.[table] ?? []));
      pending = out.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return items;
}

/** Every item a query matches, page after page (strongly consistent). */
export async function queryAll(input: QueryCommandInput): Promise<Record<string, any>[]> {
  const items: Record<string, any>[] = [];
  let start: Record<string, any> | undefined;
  do {
    const page = await ddb().send(new QueryCommand({ ...input, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}
