/**
 * `npm run cost [-- --json] [-- --requests-per-second=N]`: what one request costs in AWS, excluding tokens.
 *
 * It counts the AWS calls each request really makes, in the local runtime's pieces:
 * - a child process plays one gateway Lambda environment: the production bundles of the gateway and the
 *   authorizer (esbuildOptionsFor, as the stack deploys them), invoked once per request as Lambda would, so its
 *   CPU time, module load and first request are the function's own;
 * - this process holds the rest: the embedded DynamoDB behind a counting proxy (every call, with the read and
 *   write units DynamoDB bills, by item size), the local EventBridge (PutEvents calls and entries) delivering
 *   to the ledger writer (its invocations and duration), and the Bedrock stand-in.
 * Over a realistic mix of requests it then prices the counts with the ca-central-1 table below, at the gateway's
 * deployed memory and at the 1,024 MB it had, for 2 s, 10 s and 30 s mean stream durations.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { LEDGER_BATCH } from '../lib/custody';
import { DEFAULT_GATEWAY_MEMORY_MB } from '../lib/settings';
import { MAX_REQUEST_BODY_BYTES } from '../lambdas/app/http';
import { reloadConfig } from '../lambdas/config';
import { TABLES } from '../lambdas/store/tables';
import { buildLambdaBundles, coldStarts, startLambdaEnvironment, type ColdStart } from './lambda-environment';

// ---------------------------------------------------------------------------------------------------------------
// Prices, USD, ca-central-1 (README "What a request costs in AWS" names the pages they come from).
// ---------------------------------------------------------------------------------------------------------------
export const PRICES = {
  apiGatewayRestPerMillion: 3.5,
  lambdaRequestPerMillion: 0.2,
  /** arm64, first pricing tier. */
  lambdaArmPerGbSecond: 0.0000133334,
  dynamoWriteUnitPerMillion: 0.6875,
  dynamoReadUnitPerMillion: 0.1375,
  /** Custom events, per 64 KB chunk of each entry. */
  eventBridgePerMillionEvents: 1.0,
  /** Requests with an asymmetric key (ECC_NIST_P256 Sign). */
  kmsAsymmetricPer10k: 0.15,
  /** Standard queue requests (each 64 KB chunk of a message is one request). */
  sqsPerMillion: 0.4,
  logsIngestionPerGb: 0.55,
} as const;

// ---------------------------------------------------------------------------------------------------------------
// Assumptions about AWS that the local runtime cannot show.
// ---------------------------------------------------------------------------------------------------------------
/**
 * Requests per second the deployment sustains (`--requests-per-second=N`). The bus rule feeds the ledger queue,
 * whose writer receives what arrived within LEDGER_BATCH.window of the first message (up to LEDGER_BATCH.size):
 * the busier the gateway, the fewer writer invocations and queue receives per request.
 */
const SUSTAINED_REQUESTS_PER_SECOND = 1;
/** Custody events per ledger writer invocation at `rate` requests per second. */
const eventsPerLedgerBatch = (rate: number) => Math.min(LEDGER_BATCH.size, 1 + rate * LEDGER_BATCH.window.toSeconds());
/**
 * API Gateway caches the authorizer's answer per key for 30 s; a key that sends a request every 10 s (Cursor
 * in use) is authorized once every 3 requests.
 */
const AUTHORIZER_INVOCATIONS_PER_REQUEST = 1 / 3;
/** One round trip to DynamoDB or EventBridge from a Lambda in the same region, which the loopback store hides. */
const AWS_CALL_MS = 10;
/** Lambda gives a function one vCPU at 1,769 MB and CPU in proportion to memory below that. */
const ONE_VCPU_MB = 1769;
/** What Lambda itself logs per invocation (START, END and REPORT lines) and API Gateway's access log line. */
const LAMBDA_PLATFORM_LOG_BYTES = 340;
const ACCESS_LOG_BYTES = 420;
const WRITER_MEMORY_MB = 512;
const AUTHORIZER_MEMORY_MB = 512;
const BEFORE_MEMORY_MB = 1024;
const STREAM_SECONDS = [2, 10, 30] as const;
/** The gateway memory the stack deploys unless told otherwise (context gatewayMemoryMB). */
const DEPLOYED_MEMORY_MB = DEFAULT_GATEWAY_MEMORY_MB;

const WARMUP = 60;
const MEASURED = 300;
const PROMPT_200KB_RUNS = 16;
const COLD_STARTS = 7;

const log = (msg: string) => process.stderr.write(`[cost] ${msg}\n`);

// ---------------------------------------------------------------------------------------------------------------
// The mix: what Cursor and SDK clients send, by weight.
// ---------------------------------------------------------------------------------------------------------------
const TOOLS = ['read_file', 'edit_file', 'run_terminal_cmd'].map((name) => ({
  type: 'function', function: { name, description: `Cursor tool ${name}`, parameters: { type: 'object', properties: { path: { type: 'string' } } } },
}));
const filler = (bytes: number, seed: string) => {
  const line = `function ${seed}(x) { return x.map((v) => v * 2).filter(Boolean); } // contact dev@example.ca\n`;
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
};
/** A prompt with personal data in it (e-mails, phone numbers, postal codes): what the PII scan works hardest on. */
const personal = (bytes: number) => {
  const line = 'Client Marie Tremblay (marie.tremblay@courriel.ca, 514-555-0199) lives at H2X 1Y4; her note follows. ';
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
};

type Key = 'uncapped' | 'capped';
interface MixItem { name: string; weight: number; key: Key; body: object }

const MIX: MixItem[] = [
  {
    name: 'Cursor agent turn (Sonnet 4.5, tools, 40 KB, streamed, no max_tokens)', weight: 50, key: 'uncapped',
    body: {
      model: 'anthropic/claude-sonnet-4.5', stream: true, stream_options: { include_usage: true }, tools: TOOLS,
      messages: [{ role: 'system', content: filler(8_000, 'rules') }, { role: 'user', content: `${filler(32_000, 'code')}\nni-standin:words=300` }],
    },
  },
  {
    name: 'Cursor chat (Haiku 4.5, 4 KB, streamed)', weight: 20, key: 'uncapped',
    body: { model: 'anthropic/claude-haiku-4.5', stream: true, messages: [{ role: 'user', content: `${personal(4_000)}\nni-standin:words=120` }] },
  },
  {
    name: 'SDK call (Llama 3 70B, 1 KB, not streamed, max_tokens 256)', weight: 10, key: 'uncapped',
    body: { model: 'meta/llama-3-70b', max_tokens: 256, messages: [{ role: 'user', content: `${personal(1_000)}\nni-standin:words=80` }] },
  },
  {
    name: 'Capped key (Sonnet 4.5, 10 KB, streamed)', weight: 15, key: 'capped',
    body: { model: 'anthropic/claude-sonnet-4.5', stream: true, messages: [{ role: 'user', content: `${filler(10_000, 'diff')}\nni-standin:words=200` }] },
  },
  { name: 'Client error (unknown model)', weight: 5, key: 'uncapped', body: { model: 'anthropic/claude-9', messages: [{ role: 'user', content: 'hi' }] } },
];

/** MEASURED requests in weight order, interleaved so every stretch of the run has the same mix. */
function schedule(n: number): MixItem[] {
  const total = MIX.reduce((a, m) => a + m.weight, 0);
  const out: MixItem[] = [];
  const credit = MIX.map(() => 0);
  for (let i = 0; i < n; i++) {
    MIX.forEach((m, j) => { credit[j] += m.weight / total; });
    const j = credit.indexOf(Math.max(...credit));
    credit[j] -= 1;
    out.push(MIX[j]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The parent: store, bus, ledger writer and stand-in, with counters.
// ---------------------------------------------------------------------------------------------------------------
interface TableCount { calls: number; readUnits: number; writeUnits: number; ops: Record<string, number> }
interface Counters { byTable: Record<string, TableCount>; checkpointPuts: number; logBytes: { gateway: number; writer: number } }

const newCounters = (): Counters => ({ byTable: {}, checkpointPuts: 0, logBytes: { gateway: 0, writer: 0 } });

/** Forwards DynamoDB calls to the store, asking it for the capacity each consumed (which it computes by item size). */
function countingDynamoProxy(target: string, counters: () => Counters): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
      const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? 'unknown';
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, any>;
      const asked = input.ReturnConsumedCapacity;
      const body = Buffer.from(JSON.stringify({ ...input, ReturnConsumedCapacity: 'TOTAL' }));
      const headers = { ...req.headers, 'content-length': String(body.length) };
      const upstream = httpRequest(`${target}${req.url}`, { method: req.method, headers }, (up: IncomingMessage) => {
        const out: Buffer[] = [];
        up.on('data', (c: Buffer) => out.push(c)).on('end', () => {
          const raw = Buffer.concat(out);
          if ((up.statusCode ?? 500) < 300) tally(counters(), op, input, JSON.parse(raw.toString('utf8') || '{}'), raw.length);
          // The client gets the answer to what it asked: capacity only if it asked for it.
          let reply = raw;
          if (!asked && (up.statusCode ?? 500) < 300) {
            const parsed = JSON.parse(raw.toString('utf8') || '{}');
            delete parsed.ConsumedCapacity;
            reply = Buffer.from(JSON.stringify(parsed));
          }
          res.writeHead(up.statusCode ?? 500, { ...up.headers, 'content-length': String(reply.length) });
          res.end(reply);
        });
      });
      upstream.on('error', (err) => res.destroy(err));
      upstream.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A table's role (keys, usage, ledger) from its local name. */
const tableOf = (name: string) => Object.entries(TABLES).find(([, t]) => t.local === name)?.[0] ?? name;

function tally(c: Counters, op: string, input: Record<string, any>, output: Record<string, any>, bytes: number): void {
  const tables: string[] = input.TableName ? [input.TableName] : Object.keys(input.RequestItems ?? input.TransactItems ?? {});
  const consumed = ([] as { TableName: string; CapacityUnits: number }[]).concat(output.ConsumedCapacity ?? []);
  const isRead = /^(Get|BatchGet|Query|Scan)/.test(op);
  for (const table of tables.length ? tables : ['unknown']) {
    const t = (c.byTable[tableOf(table)] ??= { calls: 0, readUnits: 0, writeUnits: 0, ops: {} });
    t.calls++;
    t.ops[op] = (t.ops[op] ?? 0) + 1;
    let units = consumed.filter((x) => x.TableName === table).reduce((a, x) => a + x.CapacityUnits, 0);
    // The store reports no capacity for Query: DynamoDB bills the bytes read, per 4 KB (half when eventually consistent).
    if (op === 'Query' || op === 'Scan') units = Math.max(1, Math.ceil(bytes / 4096)) * (input.ConsistentRead ? 1 : 0.5);
    if (isRead) t.readUnits += units;
    else t.writeUnits += units;
  }
  if (op === 'PutItem' && String(input.Item?.sk?.S ?? '').startsWith('checkpoint#')) c.checkpointPuts++;
}

interface Measured {
  requests: number;
  errors: number;
  gateway: { meanCpuMs: number; meanBilledMs: number; meanAuthorizerMs: number; peakRssMB: number };
  dynamo: Record<string, TableCount>;
  eventBridge: { putEventsCalls: number; entries: number; maxEntryBytes: number };
  ledgerWriter: { invocations: number; msPerEvent: number };
  kmsSigns: number;
  logBytes: { gateway: number; writer: number };
  coldStart: ColdStart;
  prompt200KB: { smallPromptFirstByteMs: number; firstByteMs: number; cpuToFirstByteMs: number; smallCpuToFirstByteMs: number; peakRssMB: number };
  largestBody: { status: number; peakRssMB: number; cpuToFirstByteMs: number };
}

async function measure(): Promise<Measured> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const dir = mkdtempSync(join(tmpdir(), 'ni-cost-'));
  const { startEmbeddedDynamo } = await import('../local/dynamo');
  const { startBedrockStandIn } = await import('../local/bedrock-standin');
  const { startLocalEventBridge } = await import('../local/bus');
  const dynamo = await startEmbeddedDynamo();
  dynamo.applyEnv();
  let counters = newCounters();
  const proxy = await countingDynamoProxy(dynamo.endpoint, () => counters);
  process.env.NI_DYNAMODB_ENDPOINT = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  process.env.NI_DATA_DIR = dir;
  process.env.NI_METRICS = 'on'; // the EMF lines CloudWatch ingests are part of the logs bill
  process.env.NI_GROUP_COMMIT_MS = '0'; // as in Lambda: one request per environment, nothing to share writes with
  reloadConfig(); // this process's store clients (the ledger writer's) go through the counting proxy too
  process.env.NI_EVENT_BUS_NAME = 'ni-cost';
  const standIn = await startBedrockStandIn({ quiet: true, recordLimit: 0 });

  // The ledger writer, in this process, its log lines counted rather than printed.
  const { handler: writer } = await import('../lambdas/handlers/ledger-writer');
  const writerTimes: number[] = [];
  let maxEntryBytes = 0;
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    counters.logBytes.writer += Buffer.byteLength(chunk);
    return true;
  }) as typeof process.stdout.write;
  const bus = await startLocalEventBridge({
    deliver: async (event) => {
      maxEntryBytes = Math.max(maxEntryBytes, Buffer.byteLength(JSON.stringify(event)));
      const t0 = performance.now();
      await (writer as (e: unknown, c: Context) => Promise<unknown>)(event, {} as Context);
      writerTimes.push(performance.now() - t0);
    },
  });

  const { createKey } = await import('../lambdas/store/keys');
  // Request limits as a deployed key has them (a write before the upstream call and one after), with a per-minute
  // limit this run never reaches: the default, 300, would refuse part of the mix. The writes are the same.
  const limits = { requests_per_minute: 1_000_000 };
  const keys: Record<Key, string> = {
    uncapped: (await createKey({ name: 'cost', tier: 'global', ...limits })).secret,
    capped: (await createKey({ name: 'cost-capped', tier: 'global', max_spend_per_day: 1_000_000 * 1_000_000, ...limits })).secret,
  };

  log('bundling the gateway and the authorizer as the stack deploys them');
  const bundles = await buildLambdaBundles(dir);
  const childEnv = {
    ...process.env,
    NI_EVENTBRIDGE_ENDPOINT: bus.endpoint,
    NI_BEDROCK_ENDPOINT: standIn.url,
    NI_SIMULATED_PROVIDERS: 'bedrock',
    // The production bundles sign every call as on Lambda; the local endpoints take any signature.
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    NI_KEY_CACHE_TTL_MS: '0', // every authorizer invocation reads the key, as one every 30 s mostly does
    NI_GATEWAY_REGION: 'ca-central-1',
  };
  /** A fresh gateway environment, its log lines counted. */
  const startChild = () => startLambdaEnvironment(bundles, childEnv, (chunk) => { counters.logBytes.gateway += chunk.length; });
  const invocation = (m: MixItem, extra = '') => ({ body: JSON.stringify(m.body).replace('ni-standin', `${extra}ni-standin`), secret: keys[m.key] });

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  log(`${COLD_STARTS} cold starts`);
  const coldStart = await coldStarts(COLD_STARTS, startChild, invocation(MIX[0]));
  await bus.flush();

  const { run, stop } = await startChild();
  try {

    log(`warming up (${WARMUP} requests)`);
    await run(schedule(WARMUP).map((m) => invocation(m)));
    await bus.flush();

    log(`measuring ${MEASURED} requests of the mix`);
    counters = newCounters();
    const busBefore = { ...bus.stats };
    writerTimes.length = 0;
    const results = await run(schedule(MEASURED).map((m) => invocation(m)));
    await bus.flush();
    const measuredCounters = counters;
    counters = newCounters();
    const busMeasured = { putEventsCalls: bus.stats.putEventsCalls - busBefore.putEventsCalls, entries: bus.stats.accepted - busBefore.accepted, invocations: bus.stats.invocations - busBefore.invocations };
    const writerMsPerEvent = writerTimes.reduce((a, x) => a + x, 0) / Math.max(1, busMeasured.entries);

    log(`a 200 KB prompt with personal data, ${PROMPT_200KB_RUNS} times, beside a 1 KB one`);
    const big = { name: '200 KB', weight: 0, key: 'uncapped' as Key, body: { model: 'anthropic/claude-sonnet-4.5', stream: true, messages: [{ role: 'user', content: `${personal(200_000)}\nni-standin:words=20` }] } };
    const small = { ...big, body: { ...big.body, messages: [{ role: 'user', content: `${personal(1_000)}\nni-standin:words=20` }] } };
    const bigRuns = await run(Array.from({ length: PROMPT_200KB_RUNS }, () => invocation(big)));
    const smallRuns = await run(Array.from({ length: PROMPT_200KB_RUNS }, () => invocation(small)));
    log('the largest body Lambda accepts (6 MB less 128 KiB), for the memory it needs');
    const largest = { ...big, body: { ...big.body, messages: [{ role: 'user', content: `${personal(MAX_REQUEST_BODY_BYTES - 2_000)}\nni-standin:words=20` }] } };
    const [largestRun] = await run([invocation(largest)]);
    await bus.flush();

    const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
    return {
      requests: results.length,
      errors: results.filter((r) => r.status >= 400).length,
      gateway: {
        meanCpuMs: mean(results.map((r) => r.cpuMs)),
        meanBilledMs: mean(results.map((r) => r.totalMs - r.authorizerMs)),
        meanAuthorizerMs: mean(results.map((r) => r.authorizerMs)),
        peakRssMB: Math.max(...results.map((r) => r.rssMB)),
      },
      dynamo: measuredCounters.byTable,
      eventBridge: { putEventsCalls: busMeasured.putEventsCalls, entries: busMeasured.entries, maxEntryBytes },
      ledgerWriter: { invocations: busMeasured.invocations, msPerEvent: writerMsPerEvent },
      kmsSigns: measuredCounters.checkpointPuts,
      logBytes: measuredCounters.logBytes,
      coldStart,
      prompt200KB: {
        smallPromptFirstByteMs: median(smallRuns.map((r) => r.firstByteMs - r.authorizerMs)),
        firstByteMs: median(bigRuns.map((r) => r.firstByteMs - r.authorizerMs)),
        cpuToFirstByteMs: median(bigRuns.map((r) => r.cpuToFirstByteMs)),
        smallCpuToFirstByteMs: median(smallRuns.map((r) => r.cpuToFirstByteMs)),
        peakRssMB: Math.max(...bigRuns.map((r) => r.rssMB)),
      },
      largestBody: { status: largestRun.status, peakRssMB: largestRun.rssMB, cpuToFirstByteMs: largestRun.cpuToFirstByteMs },
    };
  } finally {
    stop();
    process.stdout.write = stdoutWrite;
    await bus.close();
    await standIn.close();
    proxy.close();
    const { resetDdb } = await import('../lambdas/store/ddb');
    resetDdb();
    await dynamo.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Pricing.
// ---------------------------------------------------------------------------------------------------------------
const gbSeconds = (memoryMB: number, ms: number) => (memoryMB / 1024) * (ms / 1000);
/** How much longer CPU work takes at `memoryMB` than on one full vCPU. */
const cpuSlowdown = (memoryMB: number) => Math.max(1, ONE_VCPU_MB / memoryMB);

/** USD per request, by line, for a mean stream of `streamS` seconds with the gateway at `memoryMB`. */
export function perRequest(m: Measured, streamS: number, memoryMB: number, requestsPerSecond: number): Record<string, number> {
  const n = m.requests;
  const table = (name: string) => m.dynamo[name] ?? { calls: 0, readUnits: 0, writeUnits: 0, ops: {} };
  const gatewayCalls = (table('usage').calls + m.eventBridge.putEventsCalls) / n;
  // Billed: the stream, the gateway's own CPU at this memory's share of a vCPU, and its AWS round trips.
  const gatewayMs = streamS * 1000 + m.gateway.meanCpuMs * cpuSlowdown(memoryMB) + gatewayCalls * AWS_CALL_MS;
  const authorizerMs = m.gateway.meanAuthorizerMs * cpuSlowdown(AUTHORIZER_MEMORY_MB) + AWS_CALL_MS;
  // The writer's work and store calls per event as measured, each call a round trip: batches larger than the
  // local ones would save some of those calls, which this does not count.
  const batch = eventsPerLedgerBatch(requestsPerSecond);
  const writerInvocations = 1 / batch;
  const writerMsPerEvent = m.ledgerWriter.msPerEvent + (table('ledger').calls / n) * AWS_CALL_MS;
  const lambda = (invocations: number, mem: number, ms: number) =>
    invocations * (PRICES.lambdaRequestPerMillion / 1e6 + gbSeconds(mem, ms) * PRICES.lambdaArmPerGbSecond);
  const dynamo = (name: string, invocationsScale = 1) =>
    ((table(name).writeUnits * PRICES.dynamoWriteUnitPerMillion + table(name).readUnits * PRICES.dynamoReadUnitPerMillion) / 1e6 / n) * invocationsScale;
  const invocationsPerRequest = 1 + AUTHORIZER_INVOCATIONS_PER_REQUEST + writerInvocations;
  const chunks = Math.ceil(Math.max(1, m.eventBridge.maxEntryBytes) / 65_536);
  const logBytes = (m.logBytes.gateway + m.logBytes.writer) / n + invocationsPerRequest * LAMBDA_PLATFORM_LOG_BYTES + ACCESS_LOG_BYTES;
  // The keys table is read once per authorizer invocation, here every request: scaled to the cached rate.
  return {
    apiGateway: PRICES.apiGatewayRestPerMillion / 1e6,
    gatewayLambda: lambda(1, memoryMB, gatewayMs),
    authorizerLambda: lambda(AUTHORIZER_INVOCATIONS_PER_REQUEST, AUTHORIZER_MEMORY_MB, authorizerMs),
    ledgerWriterLambda: lambda(writerInvocations, WRITER_MEMORY_MB, writerMsPerEvent * batch),
    dynamoKeys: dynamo('keys', AUTHORIZER_INVOCATIONS_PER_REQUEST),
    dynamoUsage: dynamo('usage'),
    dynamoLedger: dynamo('ledger'),
    eventBridge: ((m.eventBridge.entries / n) * chunks * PRICES.eventBridgePerMillionEvents) / 1e6,
    // The rule's SendMessage per event, and per batch the writer's receive and its delete of the batch.
    sqs: ((m.eventBridge.entries / n) * (chunks + 2 / batch) * PRICES.sqsPerMillion) / 1e6,
    kms: ((m.kmsSigns / n) * PRICES.kmsAsymmetricPer10k) / 1e4,
    secretsManager: 0, // the gateway reads no secret at run time
    logs: (logBytes / 2 ** 30) * PRICES.logsIngestionPerGb,
  };
}

const perMillion = (lines: Record<string, number>) => Math.round(Object.values(lines).reduce((a, x) => a + x, 0) * 1e6 * 100) / 100;
const round2 = (x: number) => Math.round(x * 100) / 100;

function report(m: Measured, requestsPerSecond: number) {
  const at = (memoryMB: number) => Object.fromEntries(STREAM_SECONDS.map((s) => [`${s}s`, perMillion(perRequest(m, s, memoryMB, requestsPerSecond))]));
  const breakdown10s = Object.fromEntries(Object.entries(perRequest(m, 10, DEPLOYED_MEMORY_MB, requestsPerSecond)).map(([k, v]) => [k, round2(v * 1e6)]));
  // The gateway's work before the first token is CPU (parse, PII scan, hashing, signing): it stretches as the CPU share shrinks.
  const ttft200KB = (memoryMB: number) => Math.round(m.prompt200KB.cpuToFirstByteMs * cpuSlowdown(memoryMB));
  return {
    per_million_requests_usd: at(DEPLOYED_MEMORY_MB),
    gateway_memory_mb: DEPLOYED_MEMORY_MB,
    breakdown_10s_per_million_usd: breakdown10s,
    before: { gateway_memory_mb: BEFORE_MEMORY_MB, per_million_requests_usd: at(BEFORE_MEMORY_MB) },
    target: { per_million_at_10s_usd: 45, met: at(DEPLOYED_MEMORY_MB)['10s'] <= 45 },
    time_to_first_token_200kb_prompt: {
      first_byte_ms_here: round2(m.prompt200KB.firstByteMs),
      first_byte_ms_here_1kb_prompt: round2(m.prompt200KB.smallPromptFirstByteMs),
      cpu_to_first_byte_ms_here: round2(m.prompt200KB.cpuToFirstByteMs),
      cpu_to_first_byte_ms_here_1kb_prompt: round2(m.prompt200KB.smallCpuToFirstByteMs),
      at_deployed_memory_ms: ttft200KB(DEPLOYED_MEMORY_MB),
      at_before_memory_ms: ttft200KB(BEFORE_MEMORY_MB),
      peak_rss_mb: Math.round(m.prompt200KB.peakRssMB),
      added_by_deployed_memory_vs_before_ms: ttft200KB(DEPLOYED_MEMORY_MB) - ttft200KB(BEFORE_MEMORY_MB),
    },
    largest_body: { status: m.largestBody.status, peak_rss_mb: Math.round(m.largestBody.peakRssMB), cpu_to_first_byte_ms_here: round2(m.largestBody.cpuToFirstByteMs) },
    cold_start: {
      node_start_to_handler_loaded_ms: Math.round(m.coldStart.sinceProcessStartMs),
      require_bundle_ms: Math.round(m.coldStart.requireMs),
      first_request_ms: Math.round(m.coldStart.firstRequestMs),
      first_request_first_byte_ms: Math.round(m.coldStart.firstRequestFirstByteMs),
    },
    per_request: {
      requests_measured: m.requests,
      client_errors: m.errors,
      gateway_cpu_ms: round2(m.gateway.meanCpuMs),
      gateway_handler_ms_here: round2(m.gateway.meanBilledMs),
      gateway_peak_rss_mb: Math.round(m.gateway.peakRssMB),
      authorizer_ms_here: round2(m.gateway.meanAuthorizerMs),
      dynamodb: Object.fromEntries(Object.entries(m.dynamo).map(([t, c]) => [t, {
        calls: round2(c.calls / m.requests), write_units: round2(c.writeUnits / m.requests), read_units: round2(c.readUnits / m.requests),
        ops: Object.fromEntries(Object.entries(c.ops).map(([op, k]) => [op, round2(k / m.requests)])),
      }])),
      eventbridge_put_events_calls: round2(m.eventBridge.putEventsCalls / m.requests),
      eventbridge_entries: round2(m.eventBridge.entries / m.requests),
      eventbridge_max_entry_bytes: m.eventBridge.maxEntryBytes,
      ledger_writer_invocations_measured: round2(m.ledgerWriter.invocations / m.requests),
      ledger_writer_ms_per_event_here: round2(m.ledgerWriter.msPerEvent),
      kms_signs: round2(m.kmsSigns / m.requests),
      log_bytes_gateway: Math.round(m.logBytes.gateway / m.requests),
      log_bytes_ledger_writer: Math.round(m.logBytes.writer / m.requests),
    },
    assumptions: {
      sustained_requests_per_second: requestsPerSecond,
      custody_events_per_ledger_batch: round2(eventsPerLedgerBatch(requestsPerSecond)),
      ledger_batch: { size: LEDGER_BATCH.size, window_s: LEDGER_BATCH.window.toSeconds() },
      authorizer_invocations_per_request: round2(AUTHORIZER_INVOCATIONS_PER_REQUEST),
      aws_call_ms: AWS_CALL_MS,
      one_vcpu_mb: ONE_VCPU_MB,
      lambda_platform_log_bytes_per_invocation: LAMBDA_PLATFORM_LOG_BYTES,
      access_log_bytes_per_request: ACCESS_LOG_BYTES,
      mix: MIX.map((x) => `${x.weight}% ${x.name}`),
    },
    prices_usd_ca_central_1: PRICES,
  };
}

function table(r: ReturnType<typeof report>): string {
  const cols = STREAM_SECONDS.map((s) => `${s}s`);
  const row = (label: string, v: Record<string, number>) => `${label.padEnd(34)}${cols.map((c) => `$${v[c].toFixed(2)}`.padStart(10)).join('')}`;
  return [
    `AWS cost per million requests, excluding tokens (ca-central-1), by mean stream duration`,
    `${''.padEnd(34)}${cols.map((c) => c.padStart(10)).join('')}`,
    row(`gateway at ${r.gateway_memory_mb} MB (deployed)`, r.per_million_requests_usd),
    row(`gateway at ${r.before.gateway_memory_mb} MB (before)`, r.before.per_million_requests_usd),
    '',
    `At 10 s, per million: ${Object.entries(r.breakdown_10s_per_million_usd).map(([k, v]) => `${k} $${v}`).join(', ')}`,
    `Target <= $45 per million at 10 s: ${r.target.met ? 'met' : 'MISSED'}`,
    `200 KB prompt (PII scan included): ${r.time_to_first_token_200kb_prompt.cpu_to_first_byte_ms_here} ms CPU before the first token here, ` +
      `about ${r.time_to_first_token_200kb_prompt.at_deployed_memory_ms} ms at ${r.gateway_memory_mb} MB ` +
      `(${r.time_to_first_token_200kb_prompt.at_before_memory_ms} ms at ${BEFORE_MEMORY_MB} MB); peak RSS ${r.time_to_first_token_200kb_prompt.peak_rss_mb} MB`,
    `Largest body (${Math.round(MAX_REQUEST_BODY_BYTES / 1024)} KiB): status ${r.largest_body.status}, peak RSS ${r.largest_body.peak_rss_mb} MB`,
    `Cold start (production bundle, median of ${COLD_STARTS}): handler loaded ${r.cold_start.node_start_to_handler_loaded_ms} ms after node started ` +
      `(${r.cold_start.require_bundle_ms} ms of require), first request ${r.cold_start.first_request_ms} ms ` +
      `(first byte ${r.cold_start.first_request_first_byte_ms} ms; warm: ${r.per_request.gateway_handler_ms_here} ms)`,
    `Run with --json for the counts and assumptions.`,
  ].join('\n');
}

async function main(): Promise<void> {
  const flag = process.argv.find((a) => a.startsWith('--requests-per-second='));
  const requestsPerSecond = flag ? Number(flag.split('=')[1]) : SUSTAINED_REQUESTS_PER_SECOND;
  if (!Number.isFinite(requestsPerSecond) || requestsPerSecond < 0) throw new Error('--requests-per-second takes a number >= 0');
  const r = report(await measure(), requestsPerSecond);
  process.stdout.write(`${process.argv.includes('--json') ? JSON.stringify(r, null, 2) : table(r)}\n`);
}

main().catch((err) => {
  process.stderr.write(`cost failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
