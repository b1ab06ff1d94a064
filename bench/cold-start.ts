/**
 * The gateway's cold start with the production bundle: fresh Lambda environments (bench/lambda-environment.ts,
 * as `npm run cost` plays them), each timed from node's start to the handler loaded (and the require() of the
 * bundle within that), then its first request (a streamed Llama 3 answer from the Bedrock stand-in, through the
 * embedded DynamoDB and the local EventBridge) against the same request in an environment already warm.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reloadConfig } from '../lambdas/config';
import { buildLambdaBundles, coldStarts, startLambdaEnvironment } from './lambda-environment';

const RUNS = process.env.BENCH_QUICK ? 3 : 9;
const WARM = 20;

const log = (msg: string) => process.stderr.write(`[bench:cold-start] ${msg}\n`);

export async function coldStartBench(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ni-cold-'));
  const saved = { ...process.env };
  const { startEmbeddedDynamo } = await import('../local/dynamo');
  const { startBedrockStandIn } = await import('../local/bedrock-standin');
  const { startLocalEventBridge } = await import('../local/bus');
  const dynamo = await startEmbeddedDynamo();
  const standIn = await startBedrockStandIn({ quiet: true, recordLimit: 0 });
  const bus = await startLocalEventBridge({ deliver: async () => undefined });
  try {
    dynamo.applyEnv();
    Object.assign(process.env, { NI_DATA_DIR: dir, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' });
    reloadConfig();
    const { createKey } = await import('../lambdas/store/keys');
    // Without request limits, as before limits had defaults: the series stays comparable.
    const { secret } = await createKey({ name: 'cold-start', tier: 'global', requests_per_minute: null, max_concurrent_requests: null });
    log('bundling the gateway and the authorizer as the stack deploys them');
    const bundles = await buildLambdaBundles(dir);
    const env = {
      ...process.env,
      NI_EVENTBRIDGE_ENDPOINT: bus.endpoint,
      NI_EVENT_BUS_NAME: 'ni-cold-start',
      NI_BEDROCK_ENDPOINT: standIn.url,
      NI_SIMULATED_PROVIDERS: 'bedrock',
      NI_GATEWAY_REGION: 'ca-central-1',
      NI_METRICS: 'off',
      NI_LOG_LEVEL: 'WARN',
    };
    const request = { secret, body: JSON.stringify({ model: 'meta/llama-3-70b', stream: true, messages: [{ role: 'user', content: 'Say hello.' }] }) };
    log(`${RUNS} cold starts, then ${WARM} warm requests`);
    const cold = await coldStarts(RUNS, () => startLambdaEnvironment(bundles, env), request);
    const warmEnv = await startLambdaEnvironment(bundles, env);
    const warm = (await warmEnv.run(Array.from({ length: WARM + 1 }, () => request))).slice(1).map((r) => r.totalMs - r.authorizerMs).sort((a, b) => a - b);
    warmEnv.stop();
    const round = (n: number) => Math.round(n * 10) / 10;
    return {
      setup: 'production bundles (esbuildOptionsFor) in a fresh node process per run, as Lambda loads them; the first request streams Llama 3 from the Bedrock stand-in',
      runs: RUNS,
      medianMs: {
        nodeStartToHandlerLoaded: round(cold.sinceProcessStartMs),
        requireBundle: round(cold.requireMs),
        firstRequest: round(cold.firstRequestMs),
        firstRequestFirstByte: round(cold.firstRequestFirstByteMs),
        warmRequest: round(warm[Math.floor(warm.length / 2)]),
      },
    };
  } finally {
    await bus.close();
    await standIn.close();
    const { resetDdb } = await import('../lambdas/store/ddb');
    resetDdb();
    await dynamo.close();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    reloadConfig();
    rmSync(dir, { recursive: true, force: true });
  }
}
