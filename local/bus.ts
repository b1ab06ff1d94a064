/**
 * Local EventBridge: a loopback HTTP server speaking the PutEvents JSON protocol (`x-amz-json-1.1`,
 * `X-Amz-Target: AWSEvents.PutEvents`) well enough for the real `@aws-sdk/client-eventbridge` client, so the
 * gateway's emit path is the same code as on AWS (point it here with NI_EVENTBRIDGE_ENDPOINT).
 *
 * Each accepted entry becomes the real EventBridge envelope (version, id, detail-type, source, account, time,
 * region, resources, detail); entries matching the rule (source + detail-type, as the stack's rule) go to a
 * local ledger queue that `deliver` (the ledger writer) drains as the stack's SQS event source does: accepted
 * first, delivered later in batches (up to `batchSize` messages gathered for up to `batchWindowMs`), each message
 * the envelope as its body; the records the handler reports failed (all of them when it throws) are received
 * again with backoff, then dead-lettered. Dead letters are kept in `NI_DATA_DIR/custody-dead-letters.jsonl`
 * (their custody events, one a line, 0600), which `ni ledger redrive` and start-up re-drive like the outbox.
 * Faults for tests: duplicate deliveries, reordering, failing PutEvents (whole call, every entry or chosen
 * entries via FailedEntryCount).
 */
import type { EventBridgeEvent, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createHash, randomUUID } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CUSTODY_DETAIL_TYPE, CUSTODY_EVENT_SOURCE } from '../lambdas/core/custody';
import { logger } from '../lambdas/observability';

/** Where the local bus keeps the events the ledger writer kept failing on. */
export const custodyDeadLetterFile = () => join(process.env.NI_DATA_DIR || '.ni-data', 'custody-dead-letters.jsonl');

export type BusEvent = EventBridgeEvent<string, unknown>;

export interface BusFaults {
  /** Extra deliveries of each event: below 1, the probability of one extra copy; from 1, that many copies. */
  duplicate?: number;
  /** Deliver in random order (each delivery waits a random 0..20 ms before the handler is invoked). */
  reorder?: boolean;
  /**
   * Fail the next `count` PutEvents calls (all, when count is omitted): `error` answers HTTP 500
   * InternalException, `partial` answers 200 with every entry failed (FailedEntryCount > 0).
   */
  failPutEvents?: { mode: 'error' | 'partial'; count?: number } | null;
  /** Reject single entries (ErrorCode in the answer, the call's other entries accepted) whose detail it picks. */
  rejectEntry?: ((detail: unknown) => boolean) | null;
}

/** The ledger writer's handler: a batch of SQS records in, the failed ones out. */
export type Deliver = (batch: SQSEvent) => Promise<SQSBatchResponse | void>;

export interface LocalEventBridgeOptions extends BusFaults {
  deliver: Deliver;
  /** The rule's event pattern; default: the custody events. */
  rule?: { source: string; detailType: string };
  region?: string;
  account?: string;
  /** Receives of a message before it is dead-lettered (default 6), and the first redelivery delay. */
  retryAttempts?: number;
  retryBaseMs?: number;
  /** Messages per batch (default 100), and how long the first waits for others (default 20 ms). */
  batchSize?: number;
  batchWindowMs?: number;
  /** Batches in flight at once (default 4). */
  concurrency?: number;
  /** Default: custodyDeadLetterFile(). */
  deadLetterFile?: string;
  port?: number;
}

export interface LocalEventBridge {
  endpoint: string;
  /** Delivers what waits at once; resolves when every accepted event has been delivered (or dead-lettered), retries included. */
  flush(): Promise<void>;
  close(): Promise<void>;
  setFaults(faults: BusFaults): void;
  /** invocations: batches handed to the writer; delivered: the messages in them; handlerErrors: the failed ones. */
  readonly stats: { putEventsCalls: number; accepted: number; rejected: number; invocations: number; delivered: number; handlerErrors: number };
  /** Events the handler kept failing on since this bus started (all are also in the dead-letter file). */
  readonly deadLetters: BusEvent[];
}

const MAX_BODY = 1024 * 1024;
const REORDER_WINDOW_MS = 20;

export async function startLocalEventBridge(opts: LocalEventBridgeOptions): Promise<LocalEventBridge> {
  const rule = opts.rule ?? { source: CUSTODY_EVENT_SOURCE, detailType: CUSTODY_DETAIL_TYPE };
  const region = opts.region ?? 'ca-central-1';
  const account = opts.account ?? '000000000000';
  const attempts = opts.retryAttempts ?? 6;
  const baseMs = opts.retryBaseMs ?? 50;
  let faults: BusFaults = {};
  let failuresLeft = 0;
  const setFaults = (f: BusFaults) => {
    faults = { ...faults, ...f };
    if (f.failPutEvents !== undefined) failuresLeft = f.failPutEvents ? f.failPutEvents.count ?? Infinity : 0;
  };
  setFaults({ duplicate: opts.duplicate, reorder: opts.reorder, failPutEvents: opts.failPutEvents, rejectEntry: opts.rejectEntry });
  const stats = { putEventsCalls: 0, accepted: 0, rejected: 0, invocations: 0, delivered: 0, handlerErrors: 0 };
  const deadLetters: BusEvent[] = [];

  // Delivery: the ledger queue (messages ready to receive), batches in flight, and timers (the batching window,
  // redelivery backoff, reordering) whose work flush() waits for.
  interface Message { messageId: string; event: BusEvent; sentAt: number; receives: number }
  const ready: Message[] = [];
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const batchSize = opts.batchSize ?? 100;
  const limit = opts.concurrency ?? 4;
  const deadLetterFile = opts.deadLetterFile ?? custodyDeadLetterFile();
  const queueArn = `arn:aws:sqs:${region}:${account}:ni-local-ledger`;
  let running = 0;
  let window: NodeJS.Timeout | null = null;

  function receive(): void {
    if (window) clearTimeout(window);
    window = null;
    while (ready.length && running < limit) track(invoke(ready.splice(0, batchSize)));
  }
  function arrived(m: Message): void {
    ready.push(m);
    if (ready.length >= batchSize) receive();
    else window ??= setTimeout(receive, opts.batchWindowMs ?? 20);
  }
  const record = (m: Message): SQSRecord => {
    const body = JSON.stringify(m.event);
    return {
      messageId: m.messageId, receiptHandle: `${m.messageId}#${m.receives}`, body,
      attributes: { ApproximateReceiveCount: String(m.receives), SentTimestamp: String(m.sentAt), SenderId: 'events.amazonaws.com', ApproximateFirstReceiveTimestamp: String(m.sentAt) },
      messageAttributes: {}, md5OfBody: createHash('md5').update(body).digest('hex'), eventSource: 'aws:sqs', eventSourceARN: queueArn, awsRegion: region,
    };
  };
  async function invoke(batch: Message[]): Promise<void> {
    running++;
    let failed: Set<string>;
    try {
      stats.invocations++;
      stats.delivered += batch.length;
      for (const m of batch) m.receives++;
      const out = await opts.deliver({ Records: batch.map(record) });
      failed = new Set((out?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch {
      failed = new Set(batch.map((m) => m.messageId));
    } finally {
      running--;
    }
    stats.handlerErrors += failed.size;
    const dead = batch.filter((m) => failed.has(m.messageId) && m.receives >= attempts);
    for (const m of batch) {
      if (failed.has(m.messageId) && m.receives < attempts) track(sleep(baseMs * 2 ** (m.receives - 1) * (0.5 + Math.random() / 2)).then(() => arrived(m)));
    }
    if (dead.length) await deadLetter(dead.map((m) => m.event));
    receive();
  }
  async function deadLetter(events: BusEvent[]): Promise<void> {
    deadLetters.push(...events);
    try {
      await mkdir(dirname(deadLetterFile), { recursive: true, mode: 0o700 });
      // One append of whole lines (O_APPEND): a re-drive running meanwhile never reads half a line.
      await appendFile(deadLetterFile, events.map((e) => `${JSON.stringify(e.detail)}\n`).join(''), { mode: 0o600 });
    } catch (err) {
      logger.error('custody dead letters could not be kept on disk; they are only in memory until the bus stops', {
        requestIds: events.map((e) => (e.detail as { request_id?: unknown }).request_id), file: deadLetterFile, error: (err as Error).name,
      });
    }
  }
  function enqueue(event: BusEvent): void {
    const d = faults.duplicate ?? 0;
    const copies = 1 + (d >= 1 ? Math.floor(d) : Math.random() < d ? 1 : 0);
    for (let i = 0; i < copies; i++) {
      const m = { messageId: randomUUID(), event, sentAt: Date.now(), receives: 0 };
      if (faults.reorder) track(sleep(Math.random() * REORDER_WINDOW_MS).then(() => arrived(m)));
      else arrived(m);
    }
  }

  function putEvents(body: any): { status: number; payload: unknown } {
    stats.putEventsCalls++;
    const fail = failuresLeft > 0 ? faults.failPutEvents : null;
    if (fail) {
      failuresLeft--;
      if (fail.mode === 'error') return { status: 500, payload: { __type: 'InternalException', message: 'injected PutEvents failure' } };
    }
    const entries = body?.Entries;
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > 10) {
      return { status: 400, payload: { __type: 'ValidationException', message: 'Entries must hold 1 to 10 entries' } };
    }
    const results = entries.map((entry: any) => {
      if (fail) return { ErrorCode: 'InternalFailure', ErrorMessage: 'injected entry failure' };
      const parsed = parseEntry(entry);
      if ('ErrorCode' in parsed) return parsed;
      if (faults.rejectEntry?.(parsed.detail)) return { ErrorCode: 'InternalFailure', ErrorMessage: 'injected entry failure' };
      const event: BusEvent = {
        version: '0',
        id: randomUUID(),
        'detail-type': entry.DetailType,
        source: entry.Source,
        account,
        time: eventTime(entry.Time),
        region,
        resources: Array.isArray(entry.Resources) ? entry.Resources : [],
        detail: parsed.detail,
      };
      if (event.source === rule.source && event['detail-type'] === rule.detailType) enqueue(event);
      return { EventId: event.id };
    });
    const failed = results.filter((r) => 'ErrorCode' in r).length;
    stats.accepted += results.length - failed;
    stats.rejected += failed;
    return { status: 200, payload: { FailedEntryCount: failed, Entries: results } };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      const reply = (status: number, payload: unknown) => {
        const type = (payload as { __type?: string }).__type;
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...(type ? { 'x-amzn-errortype': type } : {}) });
        res.end(JSON.stringify(payload));
      };
      const target = String(req.headers['x-amz-target'] ?? '');
      if (req.method !== 'POST' || target !== 'AWSEvents.PutEvents') {
        return reply(400, { __type: 'UnknownOperationException', message: `not supported here: ${target || req.method}` });
      }
      if (size > MAX_BODY) return reply(413, { __type: 'ValidationException', message: 'request too large' });
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, { __type: 'SerializationException', message: 'body is not JSON' });
      }
      const { status, payload } = putEvents(body);
      reply(status, payload);
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(opts.port ?? 0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const flush = async () => {
    for (receive(); pending.size || ready.length; receive()) await Promise.all([...pending]);
  };
  return {
    endpoint,
    flush,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await flush();
    },
    setFaults,
    stats,
    deadLetters,
  };
}

/** An entry's detail, parsed once, or the error EventBridge answers for the entry. */
function parseEntry(entry: any): { detail: object } | { ErrorCode: string; ErrorMessage: string } {
  for (const field of ['Source', 'DetailType', 'Detail']) {
    if (typeof entry?.[field] !== 'string' || !entry[field]) return { ErrorCode: 'InvalidArgument', ErrorMessage: `${field} is required` };
  }
  try {
    const detail = JSON.parse(entry.Detail);
    if (!detail || typeof detail !== 'object' || Array.isArray(detail)) throw new Error();
    return { detail };
  } catch {
    return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is not a JSON object' };
  }
}

/** EventBridge event times are whole seconds, ISO 8601 UTC; the SDK sends Time as epoch seconds. */
function eventTime(time: unknown): string {
  const ms = typeof time === 'number' ? time * 1000 : typeof time === 'string' ? Date.parse(time) : Date.now();
  return new Date(Number.isFinite(ms) ? ms : Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
