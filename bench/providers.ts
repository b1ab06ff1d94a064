/**
 * What the gateway adds to each provider other than Bedrock: the same streamed request (a) straight to the
 * provider's stand-in with the gateway's own client for it (lambdas/providers/<name>/, in this process), and (b)
 * through the local gateway with the openai client, every stage on. The stand-ins run in one process of their own
 * (serve.ts standins), the gateway in another, on loopback; rounds of (a) and (b) alternate, as for Bedrock.
 * Anthropic's direct route serves Claude only where Bedrock's do not: the gateway here gets a catalog without
 * Sonnet 4.5's Bedrock routes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import builtIn from '../lambdas/catalog.json';
import { catalog } from '../lambdas/catalog';
import type { StreamEvent } from '../lambdas/core/chat';
import { parseChatRequest } from '../lambdas/core/openai';
import { endpointSecretName } from '../lambdas/providers/openai-compatible';
import type { ProviderName } from '../lambdas/providers/names';
import { createProviders } from '../lambdas/providers/registry';
import { buildLocalRuntime, LOCAL_BUILD_ROOT, START_FLAGS } from '../local/build';
import { compare, startChild, stop, streamViaOpenAI, type Child } from './gateway';
import { sequential, summarize, type Sample } from './load';

const MODELS: Partial<Record<ProviderName, string>> = {
  azure_openai: 'openai/gpt-4o',
  openai: 'openai/gpt-4.1',
  openai_compatible: 'meta/llama-3.3-70b',
  vertex_ai: 'vertex_ai/gemini-2-5-flash',
  anthropic: 'anthropic/claude-sonnet-4.5',
};
const PROMPT = 'Say hello.';
const ENDPOINT = 'sovereign-vllm';

const CONFIG = process.env.BENCH_QUICK
  ? { warmup: 60, rounds: 3, perRound: 40 }
  : { warmup: 300, rounds: 5, perRound: 200 };

const log = (msg: string) => process.stderr.write(`[bench:providers] ${msg}\n`);

/** The built-in catalog with Sonnet 4.5 served by Anthropic's API alone. */
function catalogWithoutBedrockSonnet(): unknown {
  const data = structuredClone(builtIn) as { models: { id: string; routes: { provider: string }[] }[] };
  const sonnet = data.models.find((m) => m.id === MODELS.anthropic)!;
  sonnet.routes = sonnet.routes.filter((r) => r.provider !== 'bedrock');
  return data;
}

export async function providersBench(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ni-bench-providers-'));
  let standIns: Child | undefined;
  let gw: Child | undefined;
  try {
    const serveJs = await buildLocalRuntime(join(__dirname, 'serve.ts'), join(LOCAL_BUILD_ROOT, 'bench'));
    standIns = await startChild(serveJs, 'standins', { ...process.env });
    const { urls, secrets } = standIns.info as unknown as { urls: Record<string, string>; secrets: Record<string, string> };
    const values: Record<string, string> = { ...secrets, [endpointSecretName(ENDPOINT)]: 'bench' };
    const secretsFile = join(dir, 'secrets.json');
    writeFileSync(secretsFile, JSON.stringify(values), { mode: 0o600 });
    const catalogFile = join(dir, 'catalog.json');
    writeFileSync(catalogFile, JSON.stringify(catalogWithoutBedrockSonnet()));
    const compatibleBaseUrl = `${urls.openai_compatible}/${ENDPOINT}/v1`;
    gw = await startChild(serveJs, 'gateway', {
      ...process.env,
      NI_AZURE_OPENAI_ENDPOINT: urls.azure_openai,
      NI_OPENAI_BASE_URL: urls.openai,
      NI_OPENAI_COMPATIBLE_BASE_URLS: JSON.stringify({ [ENDPOINT]: compatibleBaseUrl }),
      NI_VERTEX_ENDPOINT: urls.vertex_ai,
      NI_ANTHROPIC_BASE_URL: urls.anthropic,
      NI_PROVIDER_SECRETS_FILE: secretsFile,
      NI_CATALOG_FILE: catalogFile,
      NI_LOG_LEVEL: 'WARN',
      NI_METRICS: 'off',
      NI_DATA_DIR: join(dir, 'data'),
    }, START_FLAGS);
    const openai = new OpenAI({ baseURL: `${gw.info.url}/v1`, apiKey: String(gw.info.secret), maxRetries: 0 });

    // (a) The gateway's own provider clients, configured as the gateway's are.
    const endpoints = JSON.parse(readFileSync(catalogFile, 'utf8')).endpoints as Record<string, { secret: boolean }>;
    const providers = createProviders({
      endpoints: { azure_openai: urls.azure_openai, openai: urls.openai, vertex_ai: urls.vertex_ai, anthropic: urls.anthropic },
      secrets: { get: async (name) => values[name], has: (name) => name in values },
      openaiCompatible: { [ENDPOINT]: { ...endpoints[ENDPOINT], base_url: compatibleBaseUrl } },
    });
    const results: Record<string, unknown> = {};
    for (const [provider, modelId] of Object.entries(MODELS)) {
      const model = catalog().byId.get(modelId)!;
      const route = model.served.find((r) => r.provider === provider)!;
      const chat = parseChatRequest(JSON.stringify({ model: modelId, messages: [{ role: 'user', content: PROMPT }], stream: true }));
      const client = providers.get(provider)!;
      const direct = async (collect?: string[]): Promise<Sample> => {
        const t0 = performance.now();
        let ttftMs = NaN;
        const { events } = await client.stream(route, chat, model.default_max_tokens);
        for await (const e of events as AsyncIterable<StreamEvent>) {
          if (e.type !== 'text') continue;
          if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
          collect?.push(e.delta);
        }
        return { totalMs: performance.now() - t0, ttftMs };
      };
      const viaGateway = (collect?: string[]) => streamViaOpenAI(openai, modelId, PROMPT, collect);
      const a: string[] = [];
      const b: string[] = [];
      await direct(a);
      await viaGateway(b);
      if (a.join('') !== b.join('')) throw new Error(`${provider}: the reply differs between the stand-in (${a.join('')}) and the gateway (${b.join('')})`);

      log(`${provider} (${modelId}): warm-up ${CONFIG.warmup} + ${CONFIG.rounds} rounds of ${CONFIG.perRound} requests per path`);
      await sequential(CONFIG.warmup, () => direct());
      await sequential(CONFIG.warmup, () => viaGateway());
      const da: Sample[] = [];
      const db: Sample[] = [];
      for (let r = 0; r < CONFIG.rounds; r++) {
        da.push(...await sequential(CONFIG.perRound, () => direct()));
        db.push(...await sequential(CONFIG.perRound, () => viaGateway()));
      }
      const { addedLatencyMs, ttftOverheadMs, directMs, gatewayMs } = compare(summarize(da), summarize(db));
      results[provider] = { model: modelId, upstream: route.upstream_id, addedLatencyMs, ttftOverheadMs, directMs, gatewayMs };
    }
    const figures = (r: unknown) => r as { addedLatencyMs: { p50: number; p99: number }; ttftOverheadMs: { p50: number; p99: number } };
    return {
      // Per provider: what the gateway adds to the stand-in's answer, and to its first token.
      summary: Object.fromEntries(Object.entries(results).map(([p, r]) => [p, { addedLatencyMs: figures(r).addedLatencyMs, ttftOverheadMs: figures(r).ttftOverheadMs }])),
      setup: {
        direct: "the gateway's own client of the provider (lambdas/providers/<name>/) calling its stand-in, in the load generator's process",
        gateway: 'openai client, stream: true, key without a spend cap (global tier, PII substitution on), through the local gateway bundled as npm start runs it',
        standIns: 'serve.ts standins: every stand-in in one process',
        prompt: PROMPT,
        ...CONFIG,
      },
      byProvider: results,
    };
  } finally {
    if (gw) await stop(gw.proc);
    if (standIns) await stop(standIns.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}
