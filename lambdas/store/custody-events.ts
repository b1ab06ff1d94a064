import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CUSTODY_DETAIL_TYPE, CUSTODY_EVENT_SOURCE, CustodyEvent } from '../core/custody';
import { METRIC } from '../core/metrics';
import { logger, metrics } from '../observability';
import { flushMetrics } from '../telemetry';

/**
 * Custody events leave the gateway here, after the client's stream has ended, and are never lost:
 * EventBridge PutEvents (a few quick retries) → else the fallback SQS queue (AWS: the ledger writer consumes it
 * too) or, locally, a JSON-lines outbox that `redriveOutbox()` re-delivers → else an error log (ids only) and
 * the CustodyEmitFailures metric. Nothing is thrown into the caller: the client already has its response.
 */

/** Top-level strict: an unexpected field (a bug adding personal data) is dropped and named in a warning. */
const StrictCustodyEvent = CustodyEvent.strict();

/** Pauses before each PutEvents retry (jittered to half..full); no retry starts after the budget is spent. */
const RETRY_DELAYS_MS = [25, 100, 300];
const RETRY_BUDGET_MS = 1_500;

let eventBridgeClient: { endpoint: string; client: EventBridgeClient } | undefined;

/** One client per process (keep-alive); `NI_EVENTBRIDGE_ENDPOINT` points it at the local runtime's bus. */
function eventBridge(): EventBridgeClient {
  const endpoint = process.env.NI_EVENTBRIDGE_ENDPOINT ?? '';
  if (eventBridgeClient?.endpoint !== endpoint) {
    eventBridgeClient?.client.destroy();
    eventBridgeClient = {
      endpoint,
      client: new EventBridgeClient({
        region: process.env.AWS_REGION ?? 'ca-central-1',
        ...(endpoint ? { endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
        maxAttempts: 1, // the retries are ours, bounded below
        requestHandler: new NodeHttpHandler({
          connectionTimeout: 500,
          requestTimeout: 1_000, // PutEvents answers in tens of ms: a hung call must not hold the Lambda
          throwOnRequestTimeout: true,
          httpAgent: new Agent({ keepAlive: true }),
          httpsAgent: new HttpsAgent({ keepAlive: true }),
        }),
      }),
    };
  }
  return eventBridgeClient.client;
}

let sqsClient: SQSClient | undefined;
const sqs = () => (sqsClient ??= new SQSClient({
  region: process.env.AWS_REGION ?? 'ca-central-1',
  maxAttempts: 2,
  requestHandler: new NodeHttpHandler({
    connectionTimeout: 500,
    requestTimeout: 1_500,
    throwOnRequestTimeout: true,
    httpsAgent: new HttpsAgent({ keepAlive: true }),
  }),
}));

/** The local outbox of events EventBridge did not take. */
export const outboxFile = () =>
  process.env.NI_CUSTODY_OUTBOX || join(process.env.NI_DATA_DIR || '.ni-data', 'custody-outbox.jsonl');

const ids = (e: unknown) => {
  const o = (e && typeof e === 'object' ? e : {}) as Record<string, unknown>;
  return { requestId: typeof o.request_id === 'string' ? o.request_id : undefined, keyId: typeof o.key_id === 'string' ? o.key_id : undefined };
};

function countFailure(): void {
  metrics.addMetric(METRIC.custodyEmitFailures, MetricUnit.Count, 1);
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
    countFailure();
    return undefined;
  }
  logger.warn('custody event carried fields outside its schema; they were dropped', { ...ids(e), fields: paths });
  return lenient.data;
}

async function putOnce(event: CustodyEvent): Promise<void> {
  const bus = process.env.NI_EVENT_BUS_NAME;
  if (!bus) throw new Error('NI_EVENT_BUS_NAME is not set');
  const out = await eventBridge().send(new PutEventsCommand({
    Entries: [{
      EventBusName: bus,
      Source: CUSTODY_EVENT_SOURCE,
      DetailType: CUSTODY_DETAIL_TYPE,
      Detail: JSON.stringify(event),
      Time: new Date(event.ended_at),
    }],
  }));
  if (out.FailedEntryCount) throw new Error(`PutEvents rejected the entry: ${out.Entries?.[0]?.ErrorCode ?? 'unknown'}`);
}

/** PutEvents with bounded, jittered retries (at most ~2.5 s in all, for a hung endpoint); throws the last error. */
async function putWithRetry(event: CustodyEvent): Promise<void> {
  const deadline = Date.now() + RETRY_BUDGET_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await putOnce(event);
    } catch (err) {
      const delay = (RETRY_DELAYS_MS[attempt] ?? Infinity) * (0.5 + Math.random() / 2);
      if (Date.now() + delay > deadline) throw err;
      logger.warn('custody event PutEvents failed, retrying', { ...ids(event), attempt: attempt + 1, error: (err as Error).name });
      await sleep(delay);
    }
  }
}

async function appendOutbox(events: CustodyEvent[], file = outboxFile()): Promise<void> {
  if (!events.length) return;
  await mkdir(dirname(file), { recursive: true });
  // One write per batch of whole lines with O_APPEND: concurrent appenders never interleave within a line.
  await appendFile(file, events.map((e) => `${JSON.stringify(e)}\n`).join(''), { mode: 0o600 });
}

/** Emits one request's custody event (see the module comment). Never throws. */
export async function emitCustodyEvent(e: CustodyEvent): Promise<void> {
  const event = validate(e);
  if (!event) return;
  try {
    await putWithRetry(event);
    return;
  } catch (err) {
    logger.warn('custody event PutEvents failed, persisting it for re-delivery', { ...ids(event), error: (err as Error).name });
  }
  const queueUrl = process.env.NI_CUSTODY_FALLBACK_QUEUE_URL;
  try {
    if (queueUrl) await sqs().send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(event) }));
    else await appendOutbox([event]);
  } catch (err) {
    logger.error('custody event lost: EventBridge and the fallback both failed', {
      ...ids(event), fallback: queueUrl ? 'sqs' : 'outbox', error: (err as Error).name,
    });
    countFailure();
  }
}

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
  const deliver = opts.deliver ?? putWithRetry;
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
