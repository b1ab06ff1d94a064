import { S3Client } from '@aws-sdk/client-s3';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ddb } from '../../lambdas/store/ddb';
import { appendCustodyEvent, resetLedgerCache, verifyLedger } from '../../lambdas/store/ledger';
import { s3Anchor } from '../../lambdas/store/ledger-anchor';
import { custodyEvent } from '../support/custody';
import { useEmbeddedDynamo } from '../support/dynamo';
import { reloadConfig } from '../../lambdas/config';

/**
 * The AWS anchor path through the real @aws-sdk/client-s3: a stand-in speaking S3's REST protocol (path style)
 * for one bucket with PutObject (honouring If-None-Match: *, as S3's conditional writes do), GetObject and
 * ListObjectsV2. Like a bucket under compliance-mode Object Lock, it never replaces an object.
 */
const BUCKET = 'ni-anchor-test';
const objects = new Map<string, string>();
const requests: string[] = [];

const s3 = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c)).on('end', () => {
    const url = new URL(req.url!, 'http://s3');
    const [, bucket, ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    requests.push(`${req.method} ${key}${req.headers['if-none-match'] ? ` if-none-match=${req.headers['if-none-match']}` : ''}`);
    const xml = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
    };
    if (bucket !== BUCKET) return xml(404, '<Error><Code>NoSuchBucket</Code><Message>no such bucket</Message></Error>');
    if (req.method === 'PUT' && key) {
      if (req.headers['if-none-match'] === '*' && objects.has(key)) return xml(412, '<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
      objects.set(key, Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { etag: '"e"' });
      return res.end();
    }
    if (req.method === 'GET' && key) {
      if (!objects.has(key)) return xml(404, '<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>');
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(objects.get(key));
    }
    if (req.method === 'GET' && url.searchParams.get('list-type') === '2') {
      const prefix = url.searchParams.get('prefix') ?? '';
      const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
      return xml(200, `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${BUCKET}</Name><Prefix>${prefix}</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${keys.map((k) => `<Contents><Key>${k}</Key><Size>${objects.get(k)!.length}</Size></Contents>`).join('')}</ListBucketResult>`);
    }
    xml(405, `<Error><Code>MethodNotAllowed</Code><Message>${req.method}</Message></Error>`);
  });
});

let dir: string;
let client: S3Client;

useEmbeddedDynamo();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ni-anchor-s3-'));
  process.env.NI_DATA_DIR = dir;
  process.env.NI_LEDGER_SIGNING_KEY_FILE = join(dir, 'signing-key.pem');
  process.env.NI_LEDGER_CHECKPOINT_EVERY = '3';
  delete process.env.NI_LEDGER_SIGNING_KEY_ID;
  reloadConfig();
  resetLedgerCache();
  await new Promise<void>((r) => s3.listen(0, '127.0.0.1', r));
  client = new S3Client({
    endpoint: `http://127.0.0.1:${(s3.address() as AddressInfo).port}`, forcePathStyle: true, region: 'ca-central-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});

afterAll(async () => {
  client.destroy();
  await new Promise((r) => s3.close(r));
  rmSync(dir, { recursive: true, force: true });
});

it('puts each checkpoint once (If-None-Match), re-anchors it idempotently on a redelivery, and verify reads them', async () => {
  const anchor = s3Anchor(BUCKET, client);
  const events = Array.from({ length: 7 }, () => custodyEvent({ key_id: 'key_s3a' }));
  for (const e of events) await appendCustodyEvent(e, { anchor });
  const names = [...objects.keys()].sort();
  expect(names).toEqual(['checkpoints/key_s3a/000000000001.json', 'checkpoints/key_s3a/000000000003.json', 'checkpoints/key_s3a/000000000006.json']);
  expect(JSON.parse(objects.get(names[0])!)).toMatchObject({ key_id: 'key_s3a', seq: 1, alg: 'ECDSA_SHA_256', signature: expect.any(String) });
  expect(requests.filter((r) => r.startsWith('PUT')).every((r) => r.endsWith('if-none-match=*'))).toBe(true);

  // The delivery of the event at seq 3 again: the checkpoint is re-anchored, S3 answers 412, nothing changes.
  const before = new Map(objects);
  expect(await appendCustodyEvent(events[2], { anchor })).toMatchObject({ status: 'duplicate', seq: 3 });
  expect(requests.at(-1)).toBe('PUT checkpoints/key_s3a/000000000003.json if-none-match=*');
  expect(objects).toEqual(before);

  expect(await verifyLedger({ keyId: 'key_s3a', anchor })).toMatchObject({ ok: true, chains: [{ checkpoints: 3, pending_checkpoints: 0 }] });
  expect((await verifyLedger({ anchor })).ok).toBe(true);
});

it('verify fails when a table checkpoint is deleted (the anchor keeps it) or missing from the anchor', async () => {
  const anchor = s3Anchor(BUCKET, client);
  await ddb().send(new DeleteCommand({ TableName: 'ni-ledger', Key: { pk: 'chain#key_s3a', sk: 'checkpoint#000000000006' } }));
  expect((await verifyLedger({ keyId: 'key_s3a', anchor })).first_problem).toMatchObject({ seq: 6, problem: expect.stringContaining('missing from the table') });

  for (let i = 0; i < 3; i++) await appendCustodyEvent(custodyEvent({ key_id: 'key_s3b' }), { anchor });
  objects.delete('checkpoints/key_s3b/000000000003.json'); // what compliance mode forbids, to show verify would see it
  const later = new Date(Date.now() + 2 * 3_600_000);
  expect((await verifyLedger({ keyId: 'key_s3b', anchor, now: later })).first_problem).toMatchObject({ seq: 3, problem: expect.stringContaining('missing from the anchor') });
});
