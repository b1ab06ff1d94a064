import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
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
