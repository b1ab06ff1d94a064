import {
  ConditionalCheckFailedException, CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand, ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { loopbackClientConfig, type SdkRequestHandler } from '../../local/loopback';
import { listenerHandler, portHandler, servePort } from '../../local/in-process-http';

// dynalite in this thread, listening, so that a request taking the socket would show as a connection.
const dynalite = require('dynalite') as (opts: object) => Server;
let server: Server;
let store: RequestListener;
let endpoint: string;
let connections = 0;
const ports: MessagePort[] = [];

beforeAll(async () => {
  server = dynalite({ createTableMs: 0 });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  store = server.listeners('request')[0] as RequestListener;
  const c = client(listenerHandler(store));
  await c.send(new CreateTableCommand({
    TableName: 'things',
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  }));
  await waitUntilTableExists({ client: c, maxWaitTime: 10, minDelay: 0.05 }, { TableName: 'things' });
});

afterAll(async () => {
  for (const port of ports) port.close();
  await new Promise((resolve) => server.close(resolve));
});

const client = (requestHandler: SdkRequestHandler) =>
  new DynamoDBClient({ ...loopbackClientConfig(endpoint, 'dynamodb'), region: 'ca-central-1', maxAttempts: 1, requestHandler });

const channel = () => {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  return { port1, port2 };
};

/** A put, a read of it, a conditional put that must fail and a call on a missing table, through `c`. */
async function roundTrip(c: DynamoDBClient, pk: string): Promise<void> {
  const Item = { pk: { S: pk }, note: { S: 'é ✓ — not ASCII' }, n: { N: '42' } };
  await c.send(new PutItemCommand({ TableName: 'things', Item, ConditionExpression: 'attribute_not_exists(pk)' }));
  expect((await c.send(new GetItemCommand({ TableName: 'things', Key: { pk: { S: pk } }, ConsistentRead: true }))).Item).toEqual(Item);
  await expect(c.send(new PutItemCommand({ TableName: 'things', Item, ConditionExpression: 'attribute_not_exists(pk)' })))
    .rejects.toBeInstanceOf(ConditionalCheckFailedException);
  await expect(c.send(new GetItemCommand({ TableName: 'missing', Key: { pk: { S: pk } } }))).rejects.toBeInstanceOf(ResourceNotFoundException);
}

test('the SDK reaches dynalite through its request listener, in this thread, without a socket', async () => {
  await roundTrip(client(listenerHandler(store)), 'in-thread');
  expect(connections).toBe(0);
});

test('the SDK reaches dynalite through a message port, with the same answers', async () => {
  const { port1, port2 } = channel();
  servePort(port2, store);
  await roundTrip(client(portHandler(port1)), 'over-a-port');
  expect(connections).toBe(0);
});

test('calls in flight, and calls after, fail once the serving side closes its port', async () => {
  const { port1, port2 } = channel();
  let received!: () => void;
  const crossed = new Promise<void>((resolve) => {
    received = resolve;
  });
  servePort(port2, () => received()); // takes the request, never answers
  const c = client(portHandler(port1));
  const inFlight = c.send(new GetItemCommand({ TableName: 'things', Key: { pk: { S: 'x' } } }));
  await crossed;
  port2.close();
  await expect(inFlight).rejects.toThrow('the thread answering these calls has stopped');
  await expect(c.send(new GetItemCommand({ TableName: 'things', Key: { pk: { S: 'x' } } }))).rejects.toThrow('has stopped');
});

test('a listener that throws fails the call instead of leaving it waiting', async () => {
  const broken = client(listenerHandler(() => {
    throw new Error('listener failed');
  }));
  await expect(broken.send(new GetItemCommand({ TableName: 'things', Key: { pk: { S: 'x' } } }))).rejects.toThrow('listener failed');
  const { port1, port2 } = channel();
  servePort(port2, (req) => req.on('end', () => {
    throw new Error('failed on the serving side');
  }));
  await expect(client(portHandler(port1)).send(new GetItemCommand({ TableName: 'things', Key: { pk: { S: 'x' } } })))
    .rejects.toThrow('failed on the serving side');
});
