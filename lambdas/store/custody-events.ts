import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { config } from '../config';
import { CUSTODY_DETAIL_TYPE, CUSTODY_EVENT_SOURCE, CustodyEvent } from '../core/custody';
import { METRIC } from '../core/metrics';
import { flushMetrics, logger, metrics } from '../observability';
import { keepAliveHandler, resolveCredentialsNow, sdkClientSettings } from '../sdk';
import { batches } from './batching';
import { afterWindow } from './group-commit';

/**
 * Custody events leave the gateway here, after the client's stream has ended, and are never lost:
 * EventBridge PutEvents (a few quick retries) → else the fallback SQS queue (AWS: the ledger writer consumes it
 * too) or, locally, a JSON-lines outbox that `redriveOutbox()` re-delivers → else an error log (ids only) and
 * the CustodyEmitFailures metric. Nothing is thrown into the caller: the client already has its response.
 *
 * Group commit: the SDK costs CPU per call, not per entry, so events emitted at about the same time share
 * PutEvents calls. With no call in flight an event goes out after the group-commit window (group-commit.ts: at
 * once on Lambda, where a lone request waits for nothing); while calls are in flight, events queue and go out
 * together when the last one returns, at most 10 entries and 256 KB per call (EventBridge's limits). Only the
 * entries a call rejected are retried.
 */

/** Top-level strict: an unexpected field (a bug adding personal data) is dropped and named in a warning. */
const StrictCustodyEvent = CustodyEvent.strict();

/** Pauses before each PutEvents retry (jittered to half..full); no retry starts after the budget is spent. */
const RETRY_DELAYS_MS = [25, 100, 300];
const RETRY_BUDGET_MS = 1_500;
/** Per call, for PutEvents and SQS SendMessageBatch alike. */
const MAX_BATCH_ENTRIES = 10;
const MAX_BATCH_BYTES = 256 * 1024;

let eventBridgeClient: EventBridgeClient | undefined;

/** One client per process (keep-alive); `NI_EVENTBRIDGE_ENDPOINT` points it elsewhere (the local runtime's bus). */
const eventBridge = () => (eventBridgeClient ??= new EventBridgeClient({
  region: config().region,
  maxAttempts: 1, // the retries are ours, bounded below
  cacheMiddleware: true, // the middleware stack resolved once, not per call (no per-call options here)
  // PutEvents answers in tens of ms: a hung call must not hold the Lambda.
  requestHandler: keepAliveHandler({ connectionTimeout: 500, requestTimeout: 1_000 }),
  ...sdkClientSettings('events', config().endpoints.eventbridge),
}));

/** Creates the EventBridge client now (a function's init), not when the first request's custody event is sent. */
export function createCustodyClient(): void {
  resolveCredentialsNow(eventBridge());
}

/** Forget the cached client (a runtime that restarts its bus on a new port). */
export function resetEventBridge(): void {
  eventBridgeClient?.destroy();
  eventBridgeClient = undefined;
}

let sqsClient: SQSClient | undefined;
const sqs = () => (sqsClient ??= new SQSClient({
  region: config().region,
  maxAttempts: 2,
  requestHandler: keepAliveHandler({ connectionTimeout: 500, requestTimeout: 1_500 }),
  ...sdkClientSettings('sqs', undefined),
}));

/** The local outbox of events EventBridge did not take. */
export const outboxFile = () => config().custody.outboxFile;

const ids = (e: unknown) => {
  const o = (e && typeof e === 'object' ? e : {}) as Record<string, unknown>;
  return { requestId: typeof o.request_id === 'string' ? o.request_id : undefined, keyId: typeof o.key_id === 'string' ? o.key_id : undefined };
};

function countFailures(count: number): void {
  metrics.addMetric(METRIC.custodyEmitFailures, MetricUnit.Count, count);
  flushMetrics();
}

/** The event as it may leave: schema fields only. Undefined (logged, counted) when it is not a custody event. */
function validate(e: unknown): CustodyEvent | undefined {
  const strict = StrictCustodyEvent.safeParse(e);
  if (strict.success) return strict.data;
  const lenient = CustodyEvent.safeParse(e); // strips unknown keys at every level
  const paths = strict.error.issues.map((i) => [...i.path, ...('keys' in i ? [i.keys.join('|')] : [])].join('.'));
  if (!lenient.success) {
    logger.error('invalid custody event not emitted', { ...ids(e), issues: paths });
    countFailures(1);
    return undefined;
  }
  logger.warn('custody event carried fields outside its schema; they were dropped', { ...ids(e), fields: paths });
  return lenient.data;
}

/** An event on its way to the bus. `done` settles its caller: no error once it is on the bus or persisted. */
interface Outgoing {
  event: CustodyEvent;
  entry: Omit<PutEventsRequestEntry, 'EventBusName'>;
  /** Its size as EventBridge counts it: Source, DetailType and Detail in UTF-8, 14 for Time. */
  bytes: number;
  /** Retries done so far, and when its retry budget ends. */
  retries: number;
  deadline: number;
  /** When PutEvents gives up: to the fallback (emits), or back to the caller as an error (re-drives). */
  persist: boolean;
  done: (err?: Error) => void;
}

const queue: Outgoing[] = [];
let callsInFlight = 0;
let dispatchScheduled = false;

/** Sends the queue once no call is in flight, after the group-commit window so events emitted together share calls. */
function dispatch(): void {
  if (dispatchScheduled) return;
  dispatchScheduled = true;
  afterWindow(() => {
    dispatchScheduled = false;
    if (callsInFlight || !queue.length) return;
    const calls = batches(queue.splice(0), MAX_BATCH_ENTRIES, { of: (o) => o.bytes, max: MAX_BATCH_BYTES });
    callsInFlight = calls.length;
    for (const batch of calls) {
      void putBatch(batch).finally(() => {
        if (--callsInFlight === 0 && queue.length) dispatch(); // what queued while these calls ran
      });
    }
  });
}

function enqueue(event: CustodyEvent, persist: boolean): Promise<void> {
  const detail = JSON.stringify(event);
  return new Promise<void>((resolve, reject) => {
    queue.push({
      event,
      entry: { Source: CUSTODY_EVENT_SOURCE, DetailType: CUSTODY_DETAIL_TYPE, Detail: detail, Time: new Date(event.ended_at) },
      bytes: Buffer.byteLength(CUSTODY_EVENT_SOURCE) + Buffer.byteLength(CUSTODY_DETAIL_TYPE) + Buffer.byteLength(detail) + 14,
      retries: 0,
      deadline: Date.now() + RETRY_BUDGET_MS,
      persist,
      done: (err) => (err ? reject(err) : resolve()),
    });
    dispatch();
  });
}

/** One PutEvents call; its rejected entries (by index in the answer) are retried or given up. Never throws. */
async function putBatch(batch: Outgoing[]): Promise<void> {
  let failed: Outgoing[] = [];
  let error: Error | undefined;
  try {
    const bus = config().custody.eventBusName;
    if (!bus) throw new Error('NI_EVENT_BUS_NAME is not set');
    const out = await eventBridge().send(new PutEventsCommand({ Entries: batch.map((o) => ({ ...o.entry, EventBusName: bus })) }));
    if (out.FailedEntryCount) {
      const results = out.Entries ?? [];
      failed = batch.filter((_, i) => !results[i]?.EventId);
      const code = results.find((r) => r.ErrorCode)?.ErrorCode ?? 'PutEventsEntryFailed';
      error = Object.assign(new Error(`PutEvents rejected ${failed.length} of ${batch.length} entries`), { name: code });
    }
  } catch (err) {
    failed = batch;
    error = err as Error;
  }
  for (const o of batch) if (!failed.includes(o)) o.done();
  if (error) settleFailed(failed, error);
}

/** Retries what still has budget (one timer per pause length), gives up the rest. */
function settleFailed(failed: Outgoing[], error: Error): void {
  const jitter = 0.5 + Math.random() / 2;
  const retries = new Map<number, Outgoing[]>();
  const exhausted: Outgoing[] = [];
  for (const o of failed) {
    const delay = (RETRY_DELAYS_MS[o.retries] ?? Infinity) * jitter;
    if (Date.now() + delay > o.deadline) {
      exhausted.push(o);
    } else {
      o.retries++;
      retries.set(delay, [...(retries.get(delay) ?? []), o]);
    }
  }
  if (retries.size) logger.warn('custody event PutEvents failed, retrying', { entries: failed.length - exhausted.length, error: error.name });
  for (const [delay, items] of retries) {
    setTimeout(() => {
      queue.push(...items);
      dispatch();
    }, delay);
  }
  const toPersist = exhausted.filter((o) => o.persist);
  for (const o of exhausted) if (!o.persist) o.done(error);
  if (toPersist.length) {
    logger.warn('custody event PutEvents failed, persisting it for re-delivery', { requestIds: toPersist.map((o) => o.event.request_id), error: error.name });
    void persist(toPersist.map((o) => o.event)).finally(() => toPersist.forEach((o) => o.done()));
  }
}

/** Sends events to the fallback queue; returns those it did not take (after one re-send of rejected entries). */
async function sendToQueue(queueUrl: string, events: CustodyEvent[]): Promise<{ lost: CustodyEvent[]; error?: string }> {
  const lost: CustodyEvent[] = [];
  let error: string | undefined;
  const bodies = events.map((e) => JSON.stringify(e));
  await Promise.all(batches(bodies.map((_, i) => i), MAX_BATCH_ENTRIES, { of: (i) => Buffer.byteLength(bodies[i]), max: MAX_BATCH_BYTES }).map(async (batch) => {
    let pending = batch;
    for (let attempt = 0; attempt < 2 && pending.length; attempt++) {
      try {
        const out = await sqs().send(new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: pending.map((i) => ({ Id: String(i), MessageBody: bodies[i] })),
        }));
        const rejected = new Set((out.Failed ?? []).map((f) => f.Id));
        pending = pending.filter((i) => rejected.has(String(i)));
        if (pending.length) error = out.Failed?.[0]?.Code;
      } catch (err) {
        error = (err as Error).name;
        break; // the client already retried the call
      }
    }
    lost.push(...pending.map((i) => events[i]));
  }));
  return { lost, error };
}

/** Persists events PutEvents did not take: the SQS queue in AWS, else the local outbox. Never throws. */
async function persist(events: CustodyEvent[]): Promise<void> {
  const queueUrl = config().custody.fallbackQueueUrl;
  let lost: CustodyEvent[] = [];
  let error: string | undefined;
  if (queueUrl) {
    ({ lost, error } = await sendToQueue(queueUrl, events));
  } else {
    try {
      await appendOutbox(events);
    } catch (err) {
      lost = events;
      error = (err as Error).name;
    }
  }
  if (!lost.length) return;
  logger.error('custody events lost: EventBridge and the fallback both failed', {
    requestIds: lost.map((e) => e.request_id), fallback: queueUrl ? 'sqs' : 'outbox', error,
  });
  countFailures(lost.length);
}

async function appendOutbox(events: CustodyEvent[], file = outboxFile()): Promise<void> {
  if (!events.length) return;
  await mkdir(dirname(file), { recursive: true });
  // One write per batch of whole lines with O_APPEND: concurrent appenders never interleave within a line.
  await appendFile(file, events.map((e) => `${JSON.stringify(e)}\n`).join(''), { mode: 0o600 });
}

/** Emits one request's custody event (see the module comment); resolves once it is on the bus or persisted. Never throws. */
export async function emitCustodyEvent(e: CustodyEvent): Promise<void> {
  const event = validate(e);
  if (event) await enqueue(event, true);
}

/** PutEvents through the same batches and retries; throws the last error instead of persisting. */
const putEvent = (event: CustodyEvent) => enqueue(event, false);

export interface RedriveResult {
  delivered: number;
  /** Put back into the outbox for the next re-drive. */
  failed: number;
  /** Lines that are not custody events, set aside in `<outbox>.invalid`. */
  invalid: number;
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Takes the outbox (and any batch a dead re-drive left half done) by renaming it: appends go to a fresh file. */
async function claimBatches(file: string): Promise<string[]> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.redrive-`;
  const claimed: string[] = [];
  const take = async (from: string) => {
    const to = join(dir, `${prefix}${process.pid}-${Date.now()}-${randomBytes(3).toString('hex')}`);
    try {
      await rename(from, to);
      claimed.push(to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // someone else took it
    }
  };
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const name of names) {
    const pid = name.startsWith(prefix) ? Number(name.slice(prefix.length).split('-')[0]) : NaN;
    if (Number.isInteger(pid) && !isAlive(pid)) await take(join(dir, name));
  }
  await take(file);
  return claimed;
}

/**
 * Re-delivers the local outbox: every event goes through `deliver` (default: PutEvents to NI_EVENT_BUS_NAME,
 * with retries); failures go back into the outbox. Safe to run concurrently with emitters and other re-drives,
 * and at-least-once: a crash mid-way re-delivers some events, which the ledger writer records once.
 */
export async function redriveOutbox(opts: { deliver?: (e: CustodyEvent) => Promise<unknown>; file?: string; concurrency?: number } = {}): Promise<RedriveResult> {
  const file = opts.file ?? outboxFile();
  const deliver = opts.deliver ?? putEvent;
  const result: RedriveResult = { delivered: 0, failed: 0, invalid: 0 };
  for (const batch of await claimBatches(file)) {
    const events: CustodyEvent[] = [];
    const invalid: string[] = [];
    for (const line of (await readFile(batch, 'utf8')).split('\n')) {
      if (!line.trim()) continue;
      let parsed: ReturnType<typeof CustodyEvent.safeParse> | undefined;
      try {
        parsed = CustodyEvent.safeParse(JSON.parse(line));
      } catch {
        parsed = undefined; // a torn line
      }
      if (parsed?.success) events.push(parsed.data);
      else invalid.push(line);
    }
    const failed: CustodyEvent[] = [];
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const event = events[next++];
        try {
          await deliver(event);
          result.delivered++;
        } catch (err) {
          logger.warn('custody event re-delivery failed; kept in the outbox', { ...ids(event), error: (err as Error).name });
          failed.push(event);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 8) }, worker));
    await appendOutbox(failed, file);
    if (invalid.length) {
      logger.error('outbox lines that are not custody events were set aside', { count: invalid.length, file: `${file}.invalid` });
      await appendFile(`${file}.invalid`, `${invalid.join('\n')}\n`, { mode: 0o600 });
    }
    result.failed += failed.length;
    result.invalid += invalid.length;
    await unlink(batch);
  }
  return result;
}
