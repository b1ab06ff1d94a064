import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, EventBridgeEvent, SQSEvent, SQSRecord } from 'aws-lambda';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CUSTODY_DETAIL_TYPE, CUSTODY_EVENT_SOURCE, type CustodyEvent } from '../../lambdas/core/custody';
import { canonicalJson, entryHash, GENESIS_HASH, newEntry, type LedgerEntry } from '../../lambdas/core/ledger';
import { handler } from '../../lambdas/handlers/ledger-writer';
import { ddb } from '../../lambdas/store/ddb';
import { appendCustodyEvent, chainEntries, getReceipt, packEntries, resetLedgerCache, storedEntryTexts, verifyLedger } from '../../lambdas/store/ledger';
import { ledgerAnchor } from '../../lambdas/store/ledger-anchor';
import { ledgerSigner, type LedgerSigner } from '../../lambdas/store/signer';
import { custodyEvent } from '../support/custody';
import { useEmbeddedDynamo } from '../support/dynamo';
import { reloadConfig } from '../../lambdas/config';
import { localClientSettings } from '../../local/loopback';

let dir: string;
const TABLE = 'ni-ledger';
let keyCounter = 0;
const newKey = () => `key_it${Date.now().toString(36)}${keyCounter++}`;

useEmbeddedDynamo();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ni-ledger-'));
  process.env.NI_DATA_DIR = dir; // the checkpoint anchor: dir/ledger-anchor
  process.env.NI_LEDGER_SIGNING_KEY_FILE = join(dir, 'signing-key.pem');
  process.env.NI_LEDGER_CHECKPOINT_EVERY = '5';
  delete process.env.NI_LEDGER_SIGNING_KEY_ID;
  reloadConfig();
  resetLedgerCache();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Independent copies of the store module: separate head caches and queues, like separate writer processes. */
function writerProcesses(n: number): (typeof import('../../lambdas/store/ledger'))[] {
  return Array.from({ length: n }, () => {
    let mod!: typeof import('../../lambdas/store/ledger');
    jest.isolateModules(() => {
      // A module registry of its own: its SDK clients are told how to reach the local store as the runtime's are.
      (require('../../lambdas/sdk') as typeof import('../../lambdas/sdk')).useSdkClientFactory(localClientSettings);
      mod = require('../../lambdas/store/ledger');
    });
    return mod;
  });
}

const entriesOf = chainEntries;
const HOUR = 3_600_000;

/** How many block items hold the chain's entries. */
async function blockCount(keyId: string): Promise<number> {
  const out = await ddb().send(new QueryCommand({
    TableName: TABLE, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :b)',
    ExpressionAttributeValues: { ':pk': `chain#${keyId}`, ':b': 'block#' }, ConsistentRead: true, Select: 'COUNT',
  }));
  return out.Count ?? 0;
}

async function verifyKey(keyId: string) {
  const report = await verifyLedger({ keyId });
  return { ...report, chain: report.chains[0] };
}

const envelope = (detail: unknown): EventBridgeEvent<string, unknown> => ({
  version: '0', id: 'e1', 'detail-type': CUSTODY_DETAIL_TYPE, source: CUSTODY_EVENT_SOURCE, account: '000000000000',
  time: '2025-01-15T12:00:00Z', region: 'ca-central-1', resources: [], detail,
});

const sqsRecord = (messageId: string, body: string): SQSRecord => ({
  messageId, receiptHandle: `rh-${messageId}`, body, attributes: {
    ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'x', ApproximateFirstReceiveTimestamp: '0',
  }, messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:ca-central-1:000000000000:custody-fallback', awsRegion: 'ca-central-1',
});

describe('appending', () => {
  it('chains entries from the genesis hash, one per request, and signs checkpoints by policy', async () => {
    const keyId = newKey();
    const events = Array.from({ length: 7 }, () => custodyEvent({ key_id: keyId }));
    const results = [];
    for (const e of events) results.push(await appendCustodyEvent(e));
    expect(results.map((r) => [r.status, r.seq, r.checkpoint])).toEqual([
      ['appended', 1, 1], ['appended', 2, null], ['appended', 3, null], ['appended', 4, null], ['appended', 5, 5], ['appended', 6, null], ['appended', 7, null],
    ]);
    const items = await entriesOf(keyId);
    expect(items[0].prev_hash).toBe(GENESIS_HASH);
    expect(items.map((i) => i.request_id)).toEqual(events.map((e) => e.request_id));
    expect(canonicalJson(items[3].event)).toBe(canonicalJson(events[3]));
    const { ok, chain } = await verifyKey(keyId);
    expect(ok).toBe(true);
    expect(chain).toMatchObject({ entries: 7, checkpoints: 2, last_checkpoint: { seq: 5 }, unsigned_tail: 2 });
    expect(statSync(process.env.NI_LEDGER_SIGNING_KEY_FILE!).mode & 0o777).toBe(0o600);
  });

  it('stores a block\'s entries packed: a block of one entry is one write unit, where its plain form takes two', async () => {
    const keyId = newKey();
    await appendCustodyEvent(custodyEvent({ key_id: keyId }));
    const { Item: block } = await ddb().send(new GetCommand({ TableName: TABLE, Key: { pk: `chain#${keyId}`, sk: 'block#000000000001' } }));
    expect(block!.entries).toBeUndefined();
    expect(block!.entries_br).toBeInstanceOf(Uint8Array);
    // The store's own capacity accounting, by item size, for the block as stored and with its entries in plain text.
    const unitsOf = async (item: Record<string, unknown>) => (await ddb().send(new PutCommand({
      TableName: TABLE, Item: { ...item, pk: `scratch#${keyId}` }, ReturnConsumedCapacity: 'TOTAL',
    }))).ConsumedCapacity!.CapacityUnits;
    const [stored] = await entriesOf(keyId);
    const { sk_seq: _s, block: _b, key_id: _k, request_id: _r, hash: _h, ...entry } = stored;
    const { entries_br: _e, ...plain } = block!;
    expect(await unitsOf(block!)).toBe(1);
    expect(await unitsOf({ ...plain, entries: [canonicalJson(entry)] })).toBe(2);
  });

  it('records a request delivered 5 times, one after another, once', async () => {
    const keyId = newKey();
    const event = custodyEvent({ key_id: keyId });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await appendCustodyEvent(event)).status);
    expect(statuses).toEqual(['appended', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
    expect(await entriesOf(keyId)).toHaveLength(1);
  });

  it('records a request delivered 5 times concurrently (racing writer processes) once, among other appends', async () => {
    const keyId = newKey();
    const writers = writerProcesses(5);
    const dup = custodyEvent({ key_id: keyId });
    const others = Array.from({ length: 10 }, () => custodyEvent({ key_id: keyId }));
    const results = await Promise.all([
      ...writers.map((w) => w.appendCustodyEvent(dup)),
      ...others.map((e, i) => writers[i % 5].appendCustodyEvent(e)),
    ]);
    expect(results.slice(0, 5).filter((r) => r.status === 'appended')).toHaveLength(1);
    expect(new Set(results.slice(0, 5).map((r) => r.seq)).size).toBe(1);
    const items = await entriesOf(keyId);
    expect(items).toHaveLength(11);
    expect(items.filter((i) => i.request_id === dup.request_id)).toHaveLength(1);
    expect((await verifyKey(keyId)).ok).toBe(true);
  });

  it.each([
    ['one process', 1],
    ['8 racing processes', 8],
  ])('appends 64 concurrent events to one chain as seq 1..64 without forking (%s)', async (_, n) => {
    const keyId = newKey();
    const writers = writerProcesses(n);
    const events = Array.from({ length: 64 }, () => custodyEvent({ key_id: keyId }));
    const results = await Promise.all(events.map((e, i) => writers[i % n].appendCustodyEvent(e)));
    expect(results.every((r) => r.status === 'appended')).toBe(true);
    expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    const items = await entriesOf(keyId);
    expect(items.map((i) => i.seq)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    expect(new Set(items.map((i) => i.request_id)).size).toBe(64);
    // Events that queue while an append runs go in one block: far fewer block puts than events.
    if (n === 1) expect(await blockCount(keyId)).toBeLessThanOrEqual(3);
    const { ok, chain } = await verifyKey(keyId);
    expect(ok).toBe(true);
    expect(chain.head?.seq).toBe(64);
  }, 120_000); // a hang guard only: racing writers on a loaded machine can be slow against dynalite

  it('records a request delivered 3 times at once to one process once, beside another request', async () => {
    const keyId = newKey();
    const [dup, other] = [custodyEvent({ key_id: keyId }), custodyEvent({ key_id: keyId })];
    const results = await Promise.all([appendCustodyEvent(dup), appendCustodyEvent(dup), appendCustodyEvent(other), appendCustodyEvent(dup)]);
    expect(results.map((r) => r.status)).toEqual(['appended', 'duplicate', 'appended', 'duplicate']);
    expect(new Set([results[0], results[1], results[3]].map((r) => r.seq)).size).toBe(1);
    expect((await entriesOf(keyId)).map((e) => e.request_id)).toEqual([dup.request_id, other.request_id]);
    expect((await verifyKey(keyId)).ok).toBe(true);
  });

  it('keeps chains of many keys independent when written in parallel', async () => {
    const keys = Array.from({ length: 12 }, newKey);
    const events = keys.flatMap((k) => Array.from({ length: 6 }, () => custodyEvent({ key_id: k })));
    await Promise.all(events.map((e) => appendCustodyEvent(e)));
    for (const k of keys) {
      const { ok, chain } = await verifyKey(k);
      expect(ok).toBe(true);
      expect(chain.entries).toBe(6);
    }
  });

  it('does not care about delivery order (a late event is simply appended later)', async () => {
    const keyId = newKey();
    const [early, late] = [
      custodyEvent({ key_id: keyId, ended_at: '2025-01-15T12:00:01.000Z' }),
      custodyEvent({ key_id: keyId, ended_at: '2025-01-15T12:00:09.000Z' }),
    ];
    await appendCustodyEvent(late);
    await appendCustodyEvent(early);
    expect((await entriesOf(keyId)).map((i) => i.request_id)).toEqual([late.request_id, early.request_id]);
    expect((await verifyKey(keyId)).ok).toBe(true);
  });

  it('two processes (separate head caches) appending to one chain stay linear', async () => {
    const keyId = newKey();
    const [a, b] = writerProcesses(2);
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).appendCustodyEvent(custodyEvent({ key_id: keyId }))));
    }
    const { ok, chain } = await verifyKey(keyId);
    expect(ok).toBe(true);
    expect(chain.entries).toBe(24);
  });

  it('does not record a request id already recorded for another key', async () => {
    const event = custodyEvent({ key_id: newKey() });
    await appendCustodyEvent(event);
    const other = newKey();
    expect((await appendCustodyEvent({ ...event, key_id: other })).status).toBe('conflict');
    expect(await entriesOf(other)).toHaveLength(0);
  });
});

describe('crash recovery', () => {
  const putMarker = (requestId: string, keyId: string, block: number) => ddb().send(new PutCommand({
    TableName: TABLE, Item: { pk: `request#${requestId}`, sk: 'entry', request_id: requestId, key_id: keyId, block, claimed_at: new Date().toISOString() },
  }));

  it('a writer that died after claiming the next slot: in flight, then completed by the redelivery', async () => {
    const keyId = newKey();
    await appendCustodyEvent(custodyEvent({ key_id: keyId }));
    const crashed = custodyEvent({ key_id: keyId });
    await putMarker(crashed.request_id, keyId, 2);
    expect((await verifyLedger()).chains.find((c) => c.key_id === keyId)).toMatchObject({ ok: true, in_flight: 1 });
    expect(await getReceipt(crashed.request_id, keyId)).toBeNull();
    expect(await appendCustodyEvent(crashed)).toMatchObject({ status: 'appended', seq: 2 });
    expect((await verifyLedger()).chains.find((c) => c.key_id === keyId)).toMatchObject({ ok: true, in_flight: 0, entries: 2 });
  });

  it('a writer that died after claiming a slot another request then took: the redelivery moves on', async () => {
    const keyId = newKey();
    const crashed = custodyEvent({ key_id: keyId });
    await putMarker(crashed.request_id, keyId, 1);
    await appendCustodyEvent(custodyEvent({ key_id: keyId })); // takes seq 1
    await appendCustodyEvent(custodyEvent({ key_id: keyId })); // seq 2
    expect(await appendCustodyEvent(crashed)).toMatchObject({ status: 'appended', seq: 3 });
    expect(await appendCustodyEvent(crashed)).toMatchObject({ status: 'duplicate', seq: 3 });
    expect((await verifyKey(keyId)).ok).toBe(true);
  });

  it('a checkpoint lost after the entry was committed is signed by the redelivery', async () => {
    const keyId = newKey();
    const event = custodyEvent({ key_id: keyId });
    const broken: LedgerSigner = { ...ledgerSigner(), sign: () => Promise.reject(new Error('KMS unavailable')) };
    // Thrown, so the delivery is retried: the policy requires this checkpoint.
    await expect(appendCustodyEvent(event, { signer: broken })).rejects.toThrow('KMS unavailable');
    expect((await verifyKey(keyId)).chain).toMatchObject({ ok: true, entries: 1, checkpoints: 0, pending_checkpoints: 1 });
    expect((await verifyLedger({ keyId, now: new Date(Date.now() + 2 * HOUR) })).first_problem)
      .toMatchObject({ seq: 1, problem: expect.stringContaining('policy requires at seq 1 is missing') });
    expect(await appendCustodyEvent(event)).toMatchObject({ status: 'duplicate', seq: 1, checkpoint: 1 });
    expect(await appendCustodyEvent(event)).toMatchObject({ status: 'duplicate', checkpoint: null });
    expect((await verifyKey(keyId)).chain).toMatchObject({ ok: true, checkpoints: 1 });
  });

  it('a stale head cache (the table changed behind this process) costs a retry, not a fork', async () => {
    const keyId = newKey();
    await appendCustodyEvent(custodyEvent({ key_id: keyId }));
    const [other] = writerProcesses(1);
    for (let i = 0; i < 3; i++) await other.appendCustodyEvent(custodyEvent({ key_id: keyId }));
    expect(await appendCustodyEvent(custodyEvent({ key_id: keyId }))).toMatchObject({ status: 'appended', seq: 5 });
    expect((await verifyKey(keyId)).ok).toBe(true);
  });
});

describe('writer handler', () => {
  it("appends a batch's events of one key as one block per key, and returns the invalid records as failed", async () => {
    const [a, b] = [newKey(), newKey()];
    const events = [...Array.from({ length: 10 }, () => custodyEvent({ key_id: a })), ...Array.from({ length: 5 }, () => custodyEvent({ key_id: b }))];
    const records = events.map((e, i) => sqsRecord(`m${i}`, JSON.stringify(envelope(e))));
    records.splice(7, 0, sqsRecord('bad', JSON.stringify(envelope({ ...events[0], cost_micro_cad: -1 }))));
    expect(await handler({ Records: records }, {} as Context)).toEqual({ batchItemFailures: [{ itemIdentifier: 'bad' }] });
    expect([await blockCount(a), await blockCount(b)]).toEqual([1, 1]);
    expect((await entriesOf(a)).map((e) => e.request_id)).toEqual(events.slice(0, 10).map((e) => e.request_id));
    // The redelivered batch records nothing twice.
    expect(await handler({ Records: records.filter((r) => r.messageId !== 'bad') }, {} as Context)).toEqual({ batchItemFailures: [] });
    expect([(await entriesOf(a)).length, (await entriesOf(b)).length]).toEqual([10, 5]);
    expect((await verifyLedger({ keyId: a })).ok).toBe(true);
  });

  it('records SQS fallback records (detail or envelope bodies) and returns the failed ones', async () => {
    const keyId = newKey();
    const [a, b] = [custodyEvent({ key_id: keyId }), custodyEvent({ key_id: keyId })];
    const event: SQSEvent = {
      Records: [
        sqsRecord('m1', JSON.stringify(a)),
        sqsRecord('m2', JSON.stringify(envelope(b))),
        sqsRecord('m3', JSON.stringify(a)), // duplicate
        sqsRecord('m4', '{"not":"a custody event"}'),
        sqsRecord('m5', 'not json'),
      ],
    };
    expect(await handler(event, {} as Context)).toEqual({ batchItemFailures: [{ itemIdentifier: 'm4' }, { itemIdentifier: 'm5' }] });
    expect((await entriesOf(keyId)).map((i) => i.request_id).sort()).toEqual([a.request_id, b.request_id].sort());
  });
});

describe('receipts', () => {
  it("returns the entry, its link and the latest covering checkpoint to the owner, null to another key", async () => {
    const keyId = newKey();
    const events = Array.from({ length: 6 }, () => custodyEvent({ key_id: keyId }));
    for (const e of events) await appendCustodyEvent(e);
    const r = (await getReceipt(events[2].request_id, keyId)) as any;
    expect(r).toMatchObject({ request_id: events[2].request_id, key_id: keyId, entry: { seq: 3 }, checkpoint: { seq: 5, key_id: keyId } });
    expect(entryHash(r.entry)).toBe(r.hash);
    const items = await entriesOf(keyId);
    expect(r.entry.prev_hash).toBe(items[1].hash);
    expect(canonicalJson(r.entry.event)).toBe(canonicalJson(events[2]));
    // Not yet covered by a checkpoint: entry 6 (next one due at 10).
    expect(await getReceipt(events[5].request_id, keyId)).toMatchObject({ entry: { seq: 6 }, checkpoint: null });
    expect(await getReceipt(events[2].request_id, newKey())).toBeNull();
    expect(await getReceipt('req_unknown', keyId)).toBeNull();
  });
});

describe('tamper detection', () => {
  async function intactChain(n = 8) {
    const keyId = newKey();
    const events: CustodyEvent[] = [];
    for (let i = 0; i < n; i++) {
      const e = custodyEvent({ key_id: keyId });
      events.push(e);
      await appendCustodyEvent(e);
    }
    expect((await verifyKey(keyId)).ok).toBe(true);
    return keyId;
  }
  // The chains here are appended one request at a time: each block holds one entry, block s = entry s.
  const blockKey = (keyId: string, seq: number) => ({ pk: `chain#${keyId}`, sk: `block#${String(seq).padStart(12, '0')}` });
  const checkpointKey = (keyId: string, seq: number) => ({ pk: `chain#${keyId}`, sk: `checkpoint#${String(seq).padStart(12, '0')}` });
  const getBlockItem = async (keyId: string, seq: number) => (await ddb().send(new GetCommand({ TableName: TABLE, Key: blockKey(keyId, seq) }))).Item!;
  /** Puts a one-entry block at `at`, holding `entry` with the given hash (a forger's or a rewriter's block). */
  const putBlockItem = (keyId: string, at: number, entry: LedgerEntry, hash = entryHash(entry)) => ddb().send(new PutCommand({
    TableName: TABLE,
    Item: {
      ...blockKey(keyId, at), key_id: keyId, first: entry.seq, last: entry.seq, recorded_at: entry.recorded_at,
      request_ids: [entry.event.request_id], entries_br: packEntries([canonicalJson(entry)]), hashes: [hash], checkpoint_due: false,
    },
  }));
  const firstProblem = async (keyId: string) => (await verifyKey(keyId)).first_problem;

  it('a block stored before entries were packed (plain texts) verifies and answers receipts', async () => {
    const keyId = newKey();
    const events = Array.from({ length: 3 }, () => custodyEvent({ key_id: keyId }));
    for (const e of events) await appendCustodyEvent(e);
    const { entries_br, ...block } = await getBlockItem(keyId, 2);
    await ddb().send(new PutCommand({ TableName: TABLE, Item: { ...block, entries: storedEntryTexts({ entries_br }) } }));
    expect((await getBlockItem(keyId, 2)).entries_br).toBeUndefined();
    expect(await verifyKey(keyId)).toMatchObject({ ok: true, chain: { entries: 3 } });
    expect(await getReceipt(events[1].request_id, keyId)).toMatchObject({ entry: { seq: 2, event: { request_id: events[1].request_id } } });
  });

  it('an untampered chain passes, also in the full scan', async () => {
    const keyId = await intactChain();
    expect((await verifyLedger()).chains.find((c) => c.key_id === keyId)?.ok).toBe(true);
  });

  it('a modified field', async () => {
    const keyId = await intactChain();
    const [stored] = (await entriesOf(keyId)).filter((e) => e.seq === 4);
    await putBlockItem(keyId, 4, { ...stored, event: { ...stored.event, cost_micro_cad: 1 } }, stored.hash);
    expect(await firstProblem(keyId)).toEqual({ key_id: keyId, seq: 4, problem: expect.stringContaining('entry modified') });
  });

  it('a deleted entry', async () => {
    const keyId = await intactChain();
    await ddb().send(new DeleteCommand({ TableName: TABLE, Key: blockKey(keyId, 3) }));
    expect(await firstProblem(keyId)).toMatchObject({ seq: 3, problem: expect.stringContaining('missing') });
  });

  it('a deleted last block: its marker is in flight within the redelivery window, a break after it (with --key too)', async () => {
    const keyId = await intactChain(7);
    await ddb().send(new DeleteCommand({ TableName: TABLE, Key: blockKey(keyId, 7) }));
    expect((await verifyKey(keyId)).chain).toMatchObject({ ok: true, in_flight: 1 });
    const later = await verifyLedger({ keyId, now: new Date(Date.now() + 2 * HOUR) });
    expect(later.first_problem).toMatchObject({ seq: 7, problem: expect.stringContaining('longer ago than the redelivery window') });
    expect((await verifyLedger({ now: new Date(Date.now() + 2 * HOUR) })).chains.find((c) => c.key_id === keyId)?.ok).toBe(false);
  });

  it('blocks, markers and checkpoints after an older checkpoint deleted together: the anchor still has the checkpoint', async () => {
    const keyId = await intactChain(8); // checkpoints at 1 and 5
    for (let seq = 4; seq <= 8; seq++) {
      const item = await getBlockItem(keyId, seq);
      await ddb().send(new DeleteCommand({ TableName: TABLE, Key: blockKey(keyId, seq) }));
      await ddb().send(new DeleteCommand({ TableName: TABLE, Key: { pk: `request#${item.request_ids[0]}`, sk: 'entry' } }));
    }
    await ddb().send(new DeleteCommand({ TableName: TABLE, Key: checkpointKey(keyId, 5) }));
    expect(await firstProblem(keyId)).toMatchObject({ seq: 5, problem: expect.stringContaining('anchored checkpoint is missing from the table') });
  });

  it('anchors each checkpoint once, read-only, and never overwrites an anchored one', async () => {
    const keyId = await intactChain(2);
    const file = join(dir, 'ledger-anchor', keyId, `${'1'.padStart(12, '0')}.json`);
    expect(statSync(file).mode & 0o777).toBe(0o400);
    const before = readFileSync(file, 'utf8');
    const anchored = JSON.parse(before);
    await ledgerAnchor().put({ ...anchored, time: '2030-01-01T00:00:00.000Z', sk_seq: 1 });
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('a deleted tail (after the last checkpoint) is caught by the orphaned markers in a full scan', async () => {
    const keyId = await intactChain(8);
    for (const seq of [7, 8]) await ddb().send(new DeleteCommand({ TableName: TABLE, Key: blockKey(keyId, seq) }));
    const chain = (await verifyLedger()).chains.find((c) => c.key_id === keyId)!;
    expect(chain.problems[0]).toMatchObject({ seq: 8, problem: expect.stringContaining('entries deleted') });
  });

  it('a forged entry inserted, mid-chain (later entries shifted up) or appended with a correct link', async () => {
    const keyId = await intactChain(6);
    for (let seq = 6; seq >= 3; seq--) {
      const item = await getBlockItem(keyId, seq);
      await ddb().send(new PutCommand({ TableName: TABLE, Item: { ...item, ...blockKey(keyId, seq + 1) } }));
    }
    const prev = await getBlockItem(keyId, 2);
    const { hash: _, ...forged } = newEntry(custodyEvent({ key_id: keyId }), 3, prev.hashes[0], new Date());
    await putBlockItem(keyId, 3, forged);
    // Even with a forged idempotency marker, the shifted entry no longer fits the chain.
    const rid = forged.event.request_id;
    await ddb().send(new PutCommand({ TableName: TABLE, Item: { pk: `request#${rid}`, sk: 'entry', request_id: rid, key_id: keyId, block: 3 } }));
    expect(await firstProblem(keyId)).toMatchObject({ seq: 4, problem: expect.stringContaining('moved or reordered') });

    const other = await intactChain(3);
    const head = await getBlockItem(other, 3);
    const { hash: __, ...tail } = newEntry(custodyEvent({ key_id: other }), 4, head.hashes[0], new Date());
    await putBlockItem(other, 4, tail);
    expect(await firstProblem(other)).toMatchObject({ seq: 4, problem: expect.stringContaining('no idempotency marker') });
  });

  it('two entries swapped', async () => {
    const keyId = await intactChain();
    const [a, b] = [await getBlockItem(keyId, 5), await getBlockItem(keyId, 6)];
    await ddb().send(new PutCommand({ TableName: TABLE, Item: { ...b, ...blockKey(keyId, 5) } }));
    await ddb().send(new PutCommand({ TableName: TABLE, Item: { ...a, ...blockKey(keyId, 6) } }));
    expect(await firstProblem(keyId)).toMatchObject({ seq: 5, problem: expect.stringContaining('moved or reordered') });
  });

  it('the whole chain rewritten consistently with its checkpoint items deleted: the anchor, and the policy without it', async () => {
    const keyId = await intactChain(8);
    let prev = GENESIS_HASH;
    for (const stored of await entriesOf(keyId)) {
      const entry = { v: stored.v, seq: stored.seq, prev_hash: prev, recorded_at: stored.recorded_at, event: { ...stored.event, cost_micro_cad: 1 } };
      await putBlockItem(keyId, stored.seq, entry);
      prev = entryHash(entry);
    }
    for (const seq of [1, 5]) await ddb().send(new DeleteCommand({ TableName: TABLE, Key: checkpointKey(keyId, seq) }));
    expect(await firstProblem(keyId)).toMatchObject({ seq: 1, problem: expect.stringContaining('missing from the table') });
    // Even with the anchor gone (it cannot be, in S3 compliance mode), the checkpoints the policy writes are required.
    rmSync(join(dir, 'ledger-anchor', keyId), { recursive: true });
    expect(await firstProblem(keyId)).toMatchObject({ seq: 1, problem: expect.stringContaining('policy requires at seq 1 is missing') });
  });

  it('the whole chain rewritten consistently (every hash recomputed) is caught by the signed checkpoints', async () => {
    const keyId = await intactChain(8);
    let prev = GENESIS_HASH;
    for (const stored of await entriesOf(keyId)) {
      const event = stored.seq === 2 ? { ...stored.event, model: 'a-cheaper-model', cost_micro_cad: 1 } : stored.event;
      const entry = { v: stored.v, seq: stored.seq, prev_hash: prev, recorded_at: stored.recorded_at, event };
      await putBlockItem(keyId, stored.seq, entry);
      prev = entryHash(entry);
    }
    expect(await firstProblem(keyId)).toMatchObject({ seq: 5, problem: expect.stringContaining('history rewritten') });
  });
});
