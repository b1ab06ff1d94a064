/**
 * Ledger writer throughput and cost on a fresh embedded DynamoDB. dynalite runs in a child process so this
 * process's CPU time is the writer's own (hashing, signing, SDK marshalling), not the store's.
 *
 *   hotKey        2,000 events for one key, 16 at a time, one writer process (appends to a chain queue in-process)
 *   hotKeyRacing  400 events for one key from 4 independent writer instances × 4 at a time: the cross-process
 *                 race on one chain that concurrent Lambda containers run (fewer events: dynalite is slow)
 *   manyKeys      2,000 events over 200 keys, 16 at a time
 * Absolute rates are dynalite's (a few ms per call, one thread); calls per event carry over to DynamoDB.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CustodyEvent } from '../lambdas/core/custody';
import { custodyEvent } from '../test/support/custody';
import { reloadConfig } from '../lambdas/config';
import { useSdkClientFactory } from '../lambdas/sdk';
import { localClientSettings } from '../local/loopback';

const CHILD_FLAG = 'NI_LEDGER_BENCH_STORE';

if (process.env[CHILD_FLAG] && process.send) {
  // The child: serve an in-memory dynalite until the parent disconnects.
  void import('../local/dynamo').then(async ({ startEmbeddedDynamo }) => {
    const db = await startEmbeddedDynamo();
    process.send!({ endpoint: db.endpoint, tables: db.tables });
    process.once('disconnect', () => void db.close().then(() => process.exit(0)));
  });
}

type LedgerModule = typeof import('../lambdas/store/ledger');
interface Writer { ledger: LedgerModule; client: DynamoDBDocumentClient }

/** A writer with its own module instances (own head cache, queue and DynamoDB client), like its own process. */
function isolatedWriter(): Writer {
  for (const id of Object.keys(require.cache)) if (id.includes(`${join('lambdas', 'store')}`)) delete require.cache[id];
  const ledger = require('../lambdas/store/ledger') as LedgerModule;
  const { ddb } = require('../lambdas/store/ddb') as typeof import('../lambdas/store/ddb');
  return { ledger, client: ddb() };
}

function event(keyId: string, n: number): CustodyEvent {
  const t = new Date(Date.UTC(2025, 0, 15, 12, 0, 0) + n * 1000).toISOString();
  return custodyEvent({
    request_id: `req_bench_${keyId}_${n}_${Math.random().toString(36).slice(2)}`,
    key_id: keyId,
    started_at: t,
    first_byte_at: t,
    ended_at: t,
    usage: { input_tokens: 1200, output_tokens: 300, cache_read_tokens: 0, cache_write_tokens: 0 },
    cost_micro_cad: 5400,
    pii_substitutions: {},
  });
}

async function scenario(writers: Writer[], events: CustodyEvent[], concurrency: number) {
  const calls: Record<string, number> = {};
  const counters = writers.map((w, i) => {
    const name = `bench-count-${i}`;
    w.client.middlewareStack.add((next, ctx) => (args) => {
      calls[ctx.commandName ?? '?'] = (calls[ctx.commandName ?? '?'] ?? 0) + 1;
      return next(args);
    }, { step: 'initialize', name });
    return () => w.client.middlewareStack.remove(name);
  });
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(writers.flatMap((w) => Array.from({ length: concurrency }, async () => {
    while (next < events.length) await w.ledger.appendCustodyEvent(events[next++]);
  })));
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  counters.forEach((remove) => remove());
  const total = Object.values(calls).reduce((a, b) => a + b, 0);
  const report = await writers[0].ledger.verifyLedger();
  return {
    events: events.length,
    writers: writers.length,
    concurrencyPerWriter: concurrency,
    appendsPerSec: Math.round((events.length / ms) * 1000),
    ddbCallsPerEvent: +(total / events.length).toFixed(2),
    callsByCommand: calls,
    cpuMsPerEvent: +((used.user + used.system) / 1000 / events.length).toFixed(3),
    chainsVerified: report.ok,
  };
}

async function startStore(): Promise<{ child: ChildProcess; endpoint: string; tables: Record<string, string> }> {
  const child = fork(__filename, [], { env: { ...process.env, [CHILD_FLAG]: '1' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const info = await new Promise<{ endpoint: string; tables: Record<string, string> }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { endpoint: string; tables: Record<string, string> }));
    child.once('exit', (code) => reject(new Error(`bench store exited with ${code}`)));
  });
  return { child, ...info };
}

export async function ledgerBench(): Promise<Record<string, unknown>> {
  const saved = { ...process.env };
  const dir = mkdtempSync(join(tmpdir(), 'ni-ledger-bench-'));
  const store = await startStore();
  try {
    process.env.NI_DYNAMODB_ENDPOINT = store.endpoint;
    process.env.NI_LEDGER_TABLE = store.tables.ledger;
    process.env.NI_DATA_DIR = dir; // the checkpoint anchor: dir/ledger-anchor
    process.env.NI_LEDGER_SIGNING_KEY_FILE = join(dir, 'signing-key.pem');
    delete process.env.NI_LEDGER_SIGNING_KEY_ID;
    delete process.env.NI_LEDGER_CHECKPOINT_EVERY;
    process.env.NI_LOG_LEVEL = 'ERROR';
    reloadConfig();
    useSdkClientFactory(localClientSettings);

    const run = async (writers: Writer[], events: CustodyEvent[], concurrency: number) => {
      try {
        return await scenario(writers, events, concurrency);
      } finally {
        writers.forEach((w) => w.client.destroy());
      }
    };
    const hotKey = await run([isolatedWriter()], Array.from({ length: 2000 }, (_, i) => event('key_hot', i)), 16);
    const hotKeyRacing = await run(Array.from({ length: 4 }, isolatedWriter), Array.from({ length: 400 }, (_, i) => event('key_race', i)), 4);
    const manyKeys = await run([isolatedWriter()], Array.from({ length: 2000 }, (_, i) => event(`key_m${i % 200}`, i)), 16);
    return {
      store: 'dynalite, in-memory, child process',
      checkpointPolicy: 'every 100th entry per chain + first of each hour (ECDSA P-256 local key)',
      hotKey,
      hotKeyRacing,
      manyKeys,
    };
  } finally {
    store.child.disconnect();
    rmSync(dir, { recursive: true, force: true });
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    reloadConfig();
  }
}
