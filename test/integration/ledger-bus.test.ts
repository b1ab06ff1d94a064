import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { Context, SQSEvent } from 'aws-lambda';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CUSTODY_DETAIL_TYPE, CUSTODY_EVENT_SOURCE } from '../../lambdas/core/custody';
import { METRIC } from '../../lambdas/core/metrics';
import { handler } from '../../lambdas/handlers/ledger-writer';
import { metrics } from '../../lambdas/observability';
import { emitCustodyEvent, redriveOutbox, resetEventBridge } from '../../lambdas/store/custody-events';
import { appendCustodyEvent, chainEntries, resetLedgerCache, verifyLedger } from '../../lambdas/store/ledger';
import { custodyDeadLetterFile, startLocalEventBridge, type BusEvent, type LocalEventBridge } from '../../local/bus';
import { custodyEvent } from '../support/custody';
import { useEmbeddedDynamo } from '../support/dynamo';
import { reloadConfig } from '../../lambdas/config';

let bus: LocalEventBridge;
let dir: string;
/** Every envelope the bus handed to the writer, and a switch to make the writer fail. */
const delivered: BusEvent[] = [];
/** The size of each batch the bus handed to the writer. */
const batches: number[] = [];
let failNextDeliveries = 0;
let keyCounter = 0;
const newKey = () => `key_bus${Date.now().toString(36)}${keyCounter++}`;

// Registered before the store's hooks so it runs before the store stops: closing the bus flushes deliveries
// that still write to the ledger.
afterAll(async () => {
  await bus.close();
});

useEmbeddedDynamo();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ni-bus-'));
  process.env.NI_DATA_DIR = dir;
  process.env.NI_LEDGER_SIGNING_KEY_FILE = join(dir, 'signing-key.pem');
  process.env.NI_CUSTODY_OUTBOX = join(dir, 'outbox.jsonl');
  process.env.NI_EVENT_BUS_NAME = 'ni-custody';
  process.env.NI_METRICS = 'off';
  delete process.env.NI_CUSTODY_FALLBACK_QUEUE_URL;
  delete process.env.NI_LEDGER_SIGNING_KEY_ID;
  reloadConfig();
  resetLedgerCache();
  bus = await startLocalEventBridge({
    retryBaseMs: 5,
    deliver: async (batch) => {
      batches.push(batch.Records.length);
      delivered.push(...batch.Records.map((r) => JSON.parse(r.body) as BusEvent));
      if (failNextDeliveries > 0 && failNextDeliveries--) throw new Error('writer crashed');
      return handler(batch, {} as Context);
    },
  });
  process.env.NI_EVENTBRIDGE_ENDPOINT = bus.endpoint;
  resetEventBridge();
  reloadConfig();
});

afterEach(() => {
  bus.setFaults({ duplicate: 0, reorder: false, failPutEvents: null, rejectEntry: null });
  failNextDeliveries = 0;
  rmSync(process.env.NI_CUSTODY_OUTBOX!, { force: true });
  jest.restoreAllMocks();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function requestIdsOf(keyId: string): Promise<string[]> {
  return (await chainEntries(keyId)).map((e) => e.request_id);
}

/** How many times each request's event reached the writer, from the deliveries after `from`. */
function deliveryCounts(from: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const d of delivered.slice(from)) {
    const id = (d.detail as { request_id: string }).request_id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

const outboxLines = () => (existsSync(process.env.NI_CUSTODY_OUTBOX!) ? readFileSync(process.env.NI_CUSTODY_OUTBOX!, 'utf8').split('\n').filter(Boolean) : []);

describe('gateway → EventBridge (real SDK client) → bus → ledger writer', () => {
  it('delivers the EventBridge envelope the rule matches', async () => {
    const event = custodyEvent({ key_id: newKey() });
    const before = delivered.length;
    const calls = bus.stats.putEventsCalls;
    await emitCustodyEvent(event);
    expect(bus.stats.putEventsCalls - calls).toBe(1);
    await bus.flush();
    const envelope = delivered.slice(before).find((d) => (d.detail as { request_id: string }).request_id === event.request_id)!;
    expect(envelope).toMatchObject({
      version: '0', source: CUSTODY_EVENT_SOURCE, 'detail-type': CUSTODY_DETAIL_TYPE, account: expect.stringMatching(/^\d{12}$/),
      region: 'ca-central-1', resources: [], time: event.ended_at.replace(/\.\d{3}Z$/, 'Z'), detail: event,
    });
    expect(envelope.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await requestIdsOf(event.key_id)).toEqual([event.request_id]);
  });

  it('records each request once when the bus duplicates and reorders deliveries', async () => {
    bus.setFaults({ duplicate: 2, reorder: true });
    const keys = [newKey(), newKey(), newKey()];
    const events = Array.from({ length: 30 }, (_, i) => custodyEvent({ key_id: keys[i % 3] }));
    const before = delivered.length;
    await Promise.all(events.map((e) => emitCustodyEvent(e)));
    await bus.flush();
    const deliveries = deliveryCounts(before);
    expect(events.every((e) => (deliveries.get(e.request_id) ?? 0) >= 3)).toBe(true);
    for (const k of keys) {
      const ids = await requestIdsOf(k);
      expect(ids.sort()).toEqual(events.filter((e) => e.key_id === k).map((e) => e.request_id).sort());
    }
    const report = await verifyLedger();
    expect(report.first_problem).toBeNull();
    expect(report.chains.filter((c) => keys.includes(c.key_id)).map((c) => c.entries)).toEqual([10, 10, 10]);
  });

  it('re-invokes the writer when it fails, and dead-letters an event that never succeeds', async () => {
    const event = custodyEvent({ key_id: newKey() });
    failNextDeliveries = 2;
    await emitCustodyEvent(event);
    await bus.flush();
    expect(await requestIdsOf(event.key_id)).toEqual([event.request_id]);
    expect(bus.deadLetters).toHaveLength(0);

    failNextDeliveries = 1_000;
    const doomed = custodyEvent({ key_id: newKey() });
    await emitCustodyEvent(doomed);
    await bus.flush();
    expect(bus.deadLetters.map((d) => (d.detail as { request_id: string }).request_id)).toEqual([doomed.request_id]);
    failNextDeliveries = 0;
    rmSync(custodyDeadLetterFile());
  });

  it('keeps dead letters in a file in NI_DATA_DIR (0600), not in memory; the re-drive records them once', async () => {
    const file = custodyDeadLetterFile();
    expect(file).toBe(join(dir, 'custody-dead-letters.jsonl'));
    const keyId = newKey();
    const doomed = [custodyEvent({ key_id: keyId }), custodyEvent({ key_id: keyId })];
    failNextDeliveries = 1_000;
    for (const e of doomed) await emitCustodyEvent(e);
    await bus.flush();
    failNextDeliveries = 0;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const byId = (a: { request_id: string }, b: { request_id: string }) => a.request_id.localeCompare(b.request_id);
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).sort(byId)).toEqual([...doomed].sort(byId));
    expect(await requestIdsOf(keyId)).toEqual([]);
    // The re-drive puts them back on the bus (what start-up and `ni ledger redrive` do).
    expect(await redriveOutbox({ file })).toEqual({ delivered: 2, failed: 0, invalid: 0 });
    await bus.flush();
    expect((await requestIdsOf(keyId)).sort()).toEqual(doomed.map((e) => e.request_id).sort());
    expect(existsSync(file)).toBe(false);
    expect(await redriveOutbox({ file })).toEqual({ delivered: 0, failed: 0, invalid: 0 });
  });

  it('delivers events emitted together to the writer in batches: one block per key per batch', async () => {
    const keys = [newKey(), newKey(), newKey()];
    const events = Array.from({ length: 30 }, (_, i) => custodyEvent({ key_id: keys[i % 3] }));
    const [invocations, from] = [bus.stats.invocations, batches.length];
    await Promise.all(events.map((e) => emitCustodyEvent(e)));
    await bus.flush();
    expect(batches.slice(from).reduce((a, b) => a + b, 0)).toBe(30);
    expect(bus.stats.invocations - invocations).toBeLessThan(events.length);
    for (const k of keys) {
      const entries = await chainEntries(k);
      expect(entries).toHaveLength(10);
      expect(new Set(entries.map((e) => e.block)).size).toBeLessThanOrEqual(bus.stats.invocations - invocations);
    }
  });

  it('accepts but does not deliver events the rule does not match', async () => {
    const client = new EventBridgeClient({ endpoint: bus.endpoint, region: 'ca-central-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const before = bus.stats.invocations;
    const out = await client.send(new PutEventsCommand({ Entries: [{ Source: 'someone.else', DetailType: 'Other', Detail: '{"a":1}', EventBusName: 'ni-custody' }] }));
    client.destroy();
    await bus.flush();
    expect(out.FailedEntryCount).toBe(0);
    expect(bus.stats.invocations).toBe(before);
  });

  it('answers malformed entries per entry, as EventBridge does, and delivers the call\'s good ones', async () => {
    const client = new EventBridgeClient({ endpoint: bus.endpoint, region: 'ca-central-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const good = custodyEvent({ key_id: newKey() });
    const entry = (detail: string) => ({ Source: CUSTODY_EVENT_SOURCE, DetailType: CUSTODY_DETAIL_TYPE, Detail: detail, EventBusName: 'ni-custody' });
    const from = delivered.length;
    const out = await client.send(new PutEventsCommand({
      Entries: [entry('not json'), entry('[1,2]'), { Source: CUSTODY_EVENT_SOURCE, DetailType: CUSTODY_DETAIL_TYPE, Detail: '' }, entry(JSON.stringify(good))],
    }));
    client.destroy();
    await bus.flush();
    expect(out.FailedEntryCount).toBe(3);
    expect(out.Entries!.map((e) => e.ErrorCode ?? 'ok')).toEqual(['MalformedDetail', 'MalformedDetail', 'InvalidArgument', 'ok']);
    expect(delivered.slice(from).map((d) => d.detail)).toEqual([good]);
    expect(await requestIdsOf(good.key_id)).toEqual([good.request_id]);
  });
});

describe('emit', () => {
  it('drops fields outside the schema before anything leaves (top level and nested)', async () => {
    const event = custodyEvent({ key_id: newKey() });
    const before = delivered.length;
    await emitCustodyEvent({ ...event, prompt: 'my SIN is 046 454 286', usage: { ...event.usage, note: 'x' } } as never);
    await bus.flush();
    const detail = delivered.slice(before)[0].detail as Record<string, unknown>;
    expect(detail).toEqual(event);
    expect(JSON.stringify(delivered.slice(before))).not.toContain('046 454 286');
  });

  it('counts, and never throws, when given something that is not a custody event', async () => {
    const counted = jest.spyOn(metrics, 'addMetric');
    const calls = bus.stats.putEventsCalls;
    await expect(emitCustodyEvent({ request_id: 'req_x' } as never)).resolves.toBeUndefined();
    expect(bus.stats.putEventsCalls).toBe(calls);
    expect(counted).toHaveBeenCalledWith(METRIC.custodyEmitFailures, 'Count', 1);
  });

  it('retries PutEvents through a failing call and a FailedEntryCount answer', async () => {
    const event = custodyEvent({ key_id: newKey() });
    bus.setFaults({ failPutEvents: { mode: 'error', count: 1 } });
    await emitCustodyEvent(event);
    const second = custodyEvent({ key_id: event.key_id });
    bus.setFaults({ failPutEvents: { mode: 'partial', count: 2 } });
    await emitCustodyEvent(second);
    await bus.flush();
    expect((await requestIdsOf(event.key_id)).sort()).toEqual([event.request_id, second.request_id].sort());
    expect(outboxLines()).toEqual([]);
  });

  it('keeps events EventBridge will not take in the outbox; the re-drive delivers them once', async () => {
    bus.setFaults({ failPutEvents: { mode: 'partial' } });
    const keyId = newKey();
    const events = Array.from({ length: 4 }, () => custodyEvent({ key_id: keyId }));
    for (const e of events) await emitCustodyEvent(e);
    await bus.flush();
    expect(await requestIdsOf(keyId)).toEqual([]);
    expect(outboxLines().map((l) => JSON.parse(l).request_id)).toEqual(events.map((e) => e.request_id));

    // One of them also reached the ledger another way, and the outbox holds a second copy of another.
    await appendCustodyEvent(events[0]);
    writeFileSync(process.env.NI_CUSTODY_OUTBOX!, `${JSON.stringify(events[1])}\n`, { flag: 'a' });

    bus.setFaults({ failPutEvents: null });
    expect(await redriveOutbox()).toEqual({ delivered: 5, failed: 0, invalid: 0 });
    await bus.flush();
    expect((await requestIdsOf(keyId)).sort()).toEqual(events.map((e) => e.request_id).sort());
    expect(outboxLines()).toEqual([]);
    expect(await redriveOutbox()).toEqual({ delivered: 0, failed: 0, invalid: 0 });
    expect((await verifyLedger({ keyId })).ok).toBe(true);
  });

  it('a re-drive that cannot deliver keeps the events, sets torn lines aside, and adopts a dead re-drive’s batch', async () => {
    const outbox = process.env.NI_CUSTODY_OUTBOX!;
    const keyId = newKey();
    const [a, b] = [custodyEvent({ key_id: keyId }), custodyEvent({ key_id: keyId })];
    writeFileSync(outbox, `${JSON.stringify(a)}\n{"request_id":"req_torn","key_`);
    // A batch a crashed re-drive (a pid that cannot exist) had claimed and not finished.
    writeFileSync(`${outbox}.redrive-999999999-1-abc`, `${JSON.stringify(b)}\n`);
    const failing = await redriveOutbox({ deliver: () => Promise.reject(new Error('bus down')) });
    expect(failing).toEqual({ delivered: 0, failed: 2, invalid: 1 });
    expect(outboxLines().map((l) => JSON.parse(l).request_id).sort()).toEqual([a.request_id, b.request_id].sort());
    expect(readFileSync(`${outbox}.invalid`, 'utf8')).toContain('req_torn');
    expect(existsSync(`${outbox}.redrive-999999999-1-abc`)).toBe(false);
    expect(await redriveOutbox({ deliver: appendCustodyEvent })).toMatchObject({ delivered: 2, failed: 0 });
    expect((await requestIdsOf(keyId)).sort()).toEqual([a.request_id, b.request_id].sort());
    rmSync(`${outbox}.invalid`);
  });

  it('gives up on an EventBridge endpoint that never answers and keeps the event in the outbox', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent = http.createServer(() => { /* never answers */ }).on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    process.env.NI_EVENTBRIDGE_ENDPOINT = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    resetEventBridge();
    reloadConfig();
    const event = custodyEvent({ key_id: newKey() });
    try {
      await emitCustodyEvent(event);
    } finally {
      process.env.NI_EVENTBRIDGE_ENDPOINT = bus.endpoint;
      resetEventBridge();
      reloadConfig();
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => silent.close(r));
    }
    expect(outboxLines().map((l) => JSON.parse(l).request_id)).toEqual([event.request_id]);
  });

  it('logs and counts, never throws, when EventBridge and the outbox both fail', async () => {
    bus.setFaults({ failPutEvents: { mode: 'error' } });
    const blocker = join(dir, 'not-a-directory');
    writeFileSync(blocker, '');
    const saved = process.env.NI_CUSTODY_OUTBOX;
    process.env.NI_CUSTODY_OUTBOX = join(blocker, 'outbox.jsonl');
    reloadConfig();
    const counted = jest.spyOn(metrics, 'addMetric');
    try {
      await expect(emitCustodyEvent(custodyEvent({ key_id: newKey() }))).resolves.toBeUndefined();
    } finally {
      process.env.NI_CUSTODY_OUTBOX = saved;
      reloadConfig();
    }
    expect(counted).toHaveBeenCalledWith(METRIC.custodyEmitFailures, 'Count', 1);
  });
});

describe('group commit', () => {
  const requestIdOf = (detail: unknown) => (detail as { request_id: string }).request_id;

  it('sends events emitted together in few PutEvents calls, each delivered once', async () => {
    const keyId = newKey();
    const events = Array.from({ length: 50 }, () => custodyEvent({ key_id: keyId }));
    const [before, calls, accepted] = [delivered.length, bus.stats.putEventsCalls, bus.stats.accepted];
    await Promise.all(events.map((e) => emitCustodyEvent(e)));
    // Called together, they leave together: 10 entries per call.
    expect(bus.stats.putEventsCalls - calls).toBe(5);
    expect(bus.stats.accepted - accepted).toBe(50);
    await bus.flush();
    const counts = deliveryCounts(before);
    expect(events.map((e) => counts.get(e.request_id))).toEqual(events.map(() => 1));
    expect((await requestIdsOf(keyId)).sort()).toEqual(events.map((e) => e.request_id).sort());
  });

  it('shares calls between events emitted while one is in flight', async () => {
    const events = Array.from({ length: 40 }, () => custodyEvent({ key_id: newKey() }));
    const [before, calls] = [delivered.length, bus.stats.putEventsCalls];
    // Each emit starts on its own turn of the event loop, most of them while an earlier call is in flight.
    await Promise.all(events.map(async (e, i) => {
      for (let t = 0; t < i; t++) await new Promise((r) => setImmediate(r));
      return emitCustodyEvent(e);
    }));
    expect(bus.stats.putEventsCalls - calls).toBeLessThan(events.length);
    await bus.flush();
    const counts = deliveryCounts(before);
    expect(events.map((e) => counts.get(e.request_id))).toEqual(events.map(() => 1));
  });

  it('retries only the entries PutEvents rejected', async () => {
    const events = Array.from({ length: 20 }, () => custodyEvent({ key_id: newKey() }));
    const rejectOnce = new Set(events.filter((_, i) => i % 3 === 0).map((e) => e.request_id));
    const attempts = new Map<string, number>();
    bus.setFaults({
      rejectEntry: (detail) => {
        const id = requestIdOf(detail);
        attempts.set(id, (attempts.get(id) ?? 0) + 1);
        return rejectOnce.delete(id);
      },
    });
    const before = delivered.length;
    await Promise.all(events.map((e) => emitCustodyEvent(e)));
    await bus.flush();
    expect(events.map((e, i) => attempts.get(e.request_id) === (i % 3 === 0 ? 2 : 1))).toEqual(events.map(() => true));
    const counts = deliveryCounts(before);
    expect(events.map((e) => counts.get(e.request_id))).toEqual(events.map(() => 1));
    expect(outboxLines()).toEqual([]);
  });

  it('persists each event PutEvents keeps rejecting once, and the re-drive delivers each once', async () => {
    const keyId = newKey();
    const events = Array.from({ length: 25 }, () => custodyEvent({ key_id: keyId }));
    const doomed = new Set(events.filter((_, i) => i % 2).map((e) => e.request_id));
    bus.setFaults({ rejectEntry: (detail) => doomed.has(requestIdOf(detail)) });
    const [before, calls] = [delivered.length, bus.stats.putEventsCalls];
    await Promise.all(events.map((e) => emitCustodyEvent(e)));
    // 25 events at 4 attempts each, but the attempts are batched.
    expect(bus.stats.putEventsCalls - calls).toBeLessThan(25);
    await bus.flush();
    expect(outboxLines().map((l) => JSON.parse(l).request_id).sort()).toEqual([...doomed].sort());
    const counts = deliveryCounts(before);
    expect([...counts.keys()].sort()).toEqual(events.filter((e) => !doomed.has(e.request_id)).map((e) => e.request_id).sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);

    bus.setFaults({ rejectEntry: null });
    const [redriven, redriveCalls] = [delivered.length, bus.stats.putEventsCalls];
    expect(await redriveOutbox()).toEqual({ delivered: doomed.size, failed: 0, invalid: 0 });
    expect(bus.stats.putEventsCalls - redriveCalls).toBeLessThan(doomed.size);
    await bus.flush();
    const again = deliveryCounts(redriven);
    expect([...again.keys()].sort()).toEqual([...doomed].sort());
    expect([...again.values()].every((n) => n === 1)).toBe(true);
    expect(outboxLines()).toEqual([]);
    expect((await requestIdsOf(keyId)).sort()).toEqual(events.map((e) => e.request_id).sort());
  });
});

describe('signing', () => {
  /** An EventBridge stand-in that records each PutEvents call's Authorization header and accepts every entry. */
  async function startRecorder() {
    const authorizations: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c)).on('end', () => {
        authorizations.push(req.headers.authorization);
        const entries = JSON.parse(Buffer.concat(chunks).toString('utf8')).Entries as unknown[];
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: randomUUID() })) }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as AddressInfo).port, authorizations, close: () => new Promise((r) => server.close(r)) };
  }

  it('sends unsigned PutEvents to a loopback endpoint and signs any other', async () => {
    const recorder = await startRecorder();
    process.env.AWS_ACCESS_KEY_ID = 'test'; // what a Lambda's role provides
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    reloadConfig();
    try {
      for (const host of ['127.0.0.1', 'localhost', '0.0.0.0']) { // 0.0.0.0: not a loopback name, yet it reaches the recorder
        process.env.NI_EVENTBRIDGE_ENDPOINT = `http://${host}:${recorder.port}`;
        resetEventBridge();
        reloadConfig();
        await emitCustodyEvent(custodyEvent({ key_id: newKey() }));
      }
    } finally {
      process.env.NI_EVENTBRIDGE_ENDPOINT = bus.endpoint;
      resetEventBridge();
      for (const v of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) delete process.env[v];
      reloadConfig();
      await recorder.close();
    }
    // Loopback: the placeholder of loopback.ts (well-formed, no signature computed); elsewhere: SigV4 with the role's keys.
    const placeholder = expect.stringMatching(/^AWS4-HMAC-SHA256 Credential=local\/.*Signature=unsigned$/);
    expect(recorder.authorizations).toEqual([placeholder, placeholder, expect.stringMatching(/^AWS4-HMAC-SHA256 Credential=test\/.*Signature=[0-9a-f]{64}$/)]);
    expect(outboxLines()).toEqual([]);
  });
});

describe('AWS fallback: SQS', () => {
  /** A stand-in for the fallback queue: SQS's JSON protocol, SendMessageBatch only; rejects the first entry it sees once. */
  async function startQueue() {
    const bodies: string[] = [];
    const calls: number[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c)).on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        if (req.headers['x-amz-target'] !== 'AmazonSQS.SendMessageBatch') return res.end('{}');
        const entries = body.Entries as { Id: string; MessageBody: string }[];
        calls.push(entries.length);
        const [rejected, taken] = calls.length === 1 ? [entries.slice(0, 1), entries.slice(1)] : [[], entries];
        bodies.push(...taken.map((e) => e.MessageBody));
        res.end(JSON.stringify({
          // The SDK checks each MD5.
          Successful: taken.map((e) => ({ Id: e.Id, MessageId: randomUUID(), MD5OfMessageBody: createHash('md5').update(e.MessageBody).digest('hex') })),
          Failed: rejected.map((e) => ({ Id: e.Id, SenderFault: false, Code: 'InternalError' })),
        }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/000000000000/ni-custody-fallback`, bodies, calls, close: () => new Promise((r) => server.close(r)) };
  }

  it('sends events EventBridge will not take to the queue in batches, each once; the writer appends them', async () => {
    const queue = await startQueue();
    process.env.NI_CUSTODY_FALLBACK_QUEUE_URL = queue.url;
    process.env.AWS_ACCESS_KEY_ID = 'test'; // what a Lambda's role provides
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    reloadConfig();
    bus.setFaults({ failPutEvents: { mode: 'error' } });
    const keyId = newKey();
    const events = Array.from({ length: 12 }, () => custodyEvent({ key_id: keyId }));
    try {
      await Promise.all(events.map((e) => emitCustodyEvent(e)));
    } finally {
      for (const v of ['NI_CUSTODY_FALLBACK_QUEUE_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) delete process.env[v];
      reloadConfig();
      await queue.close();
    }
    expect(outboxLines()).toEqual([]);
    // Two batches (10 + 2) and the re-send of the entry the queue rejected.
    expect(queue.calls).toHaveLength(3);
    const byId = (a: { request_id: string }, b: { request_id: string }) => a.request_id.localeCompare(b.request_id);
    expect(queue.bodies.map((b) => JSON.parse(b)).sort(byId)).toEqual([...events].sort(byId));
    const sqsEvent = {
      Records: queue.bodies.map((body, i) => ({ messageId: `m${i}`, body, receiptHandle: 'r', attributes: {}, messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: 'arn', awsRegion: 'ca-central-1' })),
    } as unknown as SQSEvent;
    expect(await handler(sqsEvent, {} as Context)).toEqual({ batchItemFailures: [] });
    expect((await requestIdsOf(keyId)).sort()).toEqual(events.map((e) => e.request_id).sort());
  });
});
