import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { inProcessHandler, loopbackClientConfig } from '../loopback';

let doc: DynamoDBDocumentClient | undefined;

/**
 * One document client per process, keep-alive sockets (a fresh TLS/TCP handshake per write would dominate the
 * hot path). `NI_DYNAMODB_ENDPOINT` points it at the embedded local store.
 */
export function ddb(): DynamoDBDocumentClient {
  if (!doc) {
    const endpoint = process.env.NI_DYNAMODB_ENDPOINT;
    const client = new DynamoDBClient({
      ...loopbackClientConfig(endpoint, 'dynamodb'),
      region: process.env.AWS_REGION ?? 'ca-central-1',
      requestHandler: inProcessHandler(endpoint) ?? new NodeHttpHandler({
        httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
      }),
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
