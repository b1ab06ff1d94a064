/**
 * Child-process entries of the gateway benchmark, each printing one JSON line on stdout when ready:
 *   serve.ts standin   the Bedrock stand-in (nothing recorded, quiet)                 → {url, pid}
 *   serve.ts standins  the other providers' stand-ins: Azure OpenAI, OpenAI, an OpenAI-compatible host, Vertex AI
 *                      and Anthropic                       → {urls: {provider: url}, secrets: {credential: value}, pid}
 *   serve.ts gateway   the whole local gateway (authorizer, spend, PII, settle, custody bus, ledger writer)
 *                      against NI_BEDROCK_ENDPOINT, with three keys: one without a daily spend cap, one with a
 *                      cap never reached (it reserves before calling upstream), both without request limits so
 *                      that their series compare with runs from before keys had them by default, and one with
 *                      request limits (their write before calling upstream)
 *                                                                 → {url, secret, cappedSecret, limitedSecret, pid}
 *   serve.ts relay     the floor the gateway is compared with: its provider client and OpenAI⇄Converse mapping
 *                      in a plain node:http server, and nothing else (no API Gateway event, authorizer, spend,
 *                      PII, usage or custody)                                            → {url, pid}
 * The gateway child answers IPC messages: {cmd: 'drain'} (waits for the custody bus), {cmd: 'stats'} (drains,
 * then counts what the store holds) and {cmd: 'stop'} (closes everything and exits, which also writes a
 * --cpu-prof profile).
 */
import { QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolveModel } from '../lambdas/core/catalog';
import { catalog } from '../lambdas/catalog';
import { ChunkFormatter, SSE_DONE } from '../lambdas/core/completions';
import { parseChatRequest } from '../lambdas/core/openai';
import { config } from '../lambdas/config';
import { AnswerReader } from '../lambdas/core/stream';
import { createBedrockProvider } from '../lambdas/providers/bedrock';
import { useSdkClientFactory } from '../lambdas/sdk';
import { localClientSettings } from '../local/loopback';
import { LocalResponseStream } from '../local/awslambda';
import { startAnthropicStandIn } from '../local/anthropic-standin';
import { startBedrockStandIn } from '../local/bedrock-standin';
import { startOpenAIStandIn } from '../local/openai-standin';
import { startVertexStandIn } from '../local/vertex-standin';
import { startLocalGateway, type LocalGateway } from '../local/gateway';

const ready = (info: object) => process.stdout.write(`${JSON.stringify(info)}\n`);

async function count(input: QueryCommandInput): Promise<number> {
  const { ddb } = await import('../lambdas/store/ddb');
  let n = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await ddb().send(new QueryCommand({ ...input, Select: 'COUNT', ExclusiveStartKey: start }));
    n += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return n;
}

/** What reached the store for the keys, summed, once every accepted custody event has been delivered. */
async function stats(gw: LocalGateway, keyIds: string[]) {
  await gw.flush();
  const { tableName } = await import('../lambdas/store/tables');
  const { requestPk, spendPk, RESERVATION_PREFIX } = await import('../lambdas/store/usage');
  const { ddb } = await import('../lambdas/store/ddb');
  const { chainEntries } = await import('../lambdas/store/ledger');
  const totals = { ledgerEntries: 0, usageRecords: 0, spendDayRequests: 0, outstandingReservations: 0 };
  for (const keyId of keyIds) {
    totals.ledgerEntries += (await chainEntries(keyId)).length;
    totals.usageRecords += await count({
      TableName: tableName('usage'), KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': requestPk(keyId) },
    });
    const days = (await ddb().send(new QueryCommand({
      TableName: tableName('usage'), KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': spendPk(keyId) }, ConsistentRead: true,
    }))).Items ?? [];
    totals.spendDayRequests += days.reduce((a, d) => a + Number(d.requests ?? 0), 0);
    totals.outstandingReservations += days.reduce((a, d) => a + Object.keys(d).filter((k) => k.startsWith(RESERVATION_PREFIX)).length, 0);
  }
  const { outboxFile } = await import('../lambdas/store/custody-events');
  let outboxEvents = 0;
  try {
    outboxEvents = readFileSync(outboxFile(), 'utf8').split('\n').filter(Boolean).length;
  } catch {
    // no outbox file: nothing fell back
  }
  return {
    ...totals,
    bus: { ...gw.bus.stats, deadLetters: gw.bus.deadLetters.length },
    outboxEvents,
  };
}

async function gateway(): Promise<void> {
  // On disk, as `npm start` runs it (NI_DATA_DIR is a temporary folder here).
  const gw = await startLocalGateway({ forceStandIn: false, dataDir: process.env.NI_DATA_DIR });
  const { createKey } = await import('../lambdas/store/keys');
  const unlimited = { requests_per_minute: null, max_concurrent_requests: null };
  const { record, secret } = await createKey({ name: 'bench', tier: 'global', pii_mode: 'substitute', max_spend_per_day: null, ...unlimited });
  const capped = await createKey({ name: 'bench-capped', tier: 'global', pii_mode: 'substitute', max_spend_per_day: 1_000_000 * 1_000_000, ...unlimited });
  // The default limits' write (both counters: the minute's and the slot), with a per-minute limit the bench's
  // back-to-back requests never reach: 300, the default, would refuse them within seconds. The write is the
  // same whatever the numbers.
  const limited = await createKey({ name: 'bench-limits', tier: 'global', pii_mode: 'substitute', max_spend_per_day: null, requests_per_minute: 1_000_000 });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'stats') {
      stats(gw, [record.id, capped.record.id, limited.record.id]).then((s) => process.send!({ stats: s }), (err) => process.send!({ error: String(err) }));
    } else if (m.cmd === 'drain') {
      gw.flush().then(() => process.send!({ drained: true }), (err) => process.send!({ error: String(err) }));
    } else if (m.cmd === 'stop') {
      gw.close().finally(() => process.exit(0));
    }
  });
  process.once('disconnect', () => process.exit(0));
  ready({ url: gw.url, secret, cappedSecret: capped.secret, limitedSecret: limited.secret, pid: process.pid });
}

async function standIn(): Promise<void> {
  const s = await startBedrockStandIn({ quiet: true, recordLimit: 0 });
  const stop = () => void s.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.on('message', (m: { cmd: string }) => m.cmd === 'stop' && stop());
  process.once('disconnect', () => process.exit(0));
  ready({ url: s.url, pid: process.pid });
}

/** The stand-ins of every provider but Bedrock, and the credentials each takes (as the secrets file names them). */
async function standIns(): Promise<void> {
  const azure = await startOpenAIStandIn({ flavor: 'azure' });
  const openai = await startOpenAIStandIn({ flavor: 'openai' });
  const compatible = await startOpenAIStandIn({ flavor: 'openai', credentialRequired: false });
  const vertex = await startVertexStandIn();
  const anthropic = await startAnthropicStandIn();
  const all = [azure, openai, compatible, vertex, anthropic];
  // The bench sends thousands of requests: the request logs tests assert on are not kept here.
  const forget = setInterval(() => {
    for (const s of [azure, openai, compatible]) s.requests.splice(0);
    vertex.reset();
    anthropic.reset();
  }, 1000);
  const stopAll = () => {
    clearInterval(forget);
    void Promise.all(all.map((s) => s.close())).then(() => process.exit(0));
  };
  process.once('SIGTERM', stopAll);
  process.on('message', (m: { cmd: string }) => m.cmd === 'stop' && stopAll());
  process.once('disconnect', () => process.exit(0));
  ready({
    urls: { azure_openai: azure.url, openai: `${openai.url}/v1`, openai_compatible: compatible.url, vertex_ai: vertex.url, anthropic: anthropic.url },
    secrets: { azure_openai: 'bench', openai: 'bench', vertex_ai: JSON.stringify(vertex.serviceAccountKey), anthropic: anthropic.apiKey },
    pid: process.pid,
  });
}

let bedrock: ReturnType<typeof createBedrockProvider> | undefined;

/** One streamed completion, written as the gateway writes it (LocalResponseStream: one packet per turn). */
async function relayCompletion(body: string, res: ServerResponse): Promise<void> {
  if (!bedrock) {
    useSdkClientFactory(localClientSettings); // as the local runtime reaches its stand-in: unsigned on loopback
    bedrock = createBedrockProvider({ endpoint: config().endpoints.bedrock });
  }
  const chat = parseChatRequest(body);
  const { model, routes } = resolveModel(catalog(), chat.model, 'global');
  const route = routes[0];
  const { events } = await bedrock.stream(route, chat, model.max_output_tokens);
  const out = new LocalResponseStream(res);
  out.prelude = { statusCode: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } };
  const chunks = new ChunkFormatter((text) => out.write(text), { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: chat.model });
  const reader = new AnswerReader(chunks);
  chunks.role();
  for await (const event of events) reader.handle(event);
  chunks.finish(reader.complete());
  out.end(SSE_DONE);
}

async function relay(): Promise<void> {
  const server = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c)).on('end', () => {
      relayCompletion(Buffer.concat(body).toString('utf8'), res).catch((err) => res.destroy(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.on('message', (m: { cmd: string }) => m.cmd === 'stop' && process.exit(0));
  process.once('disconnect', () => process.exit(0));
  ready({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, pid: process.pid });
}

const MODES: Record<string, () => Promise<void>> = { gateway, standin: standIn, standins: standIns, relay };
const mode = process.argv[2];
(MODES[mode]?.() ?? Promise.reject(new Error(`usage: serve.ts ${Object.keys(MODES).join('|')}`)))
  .catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
