import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { catalog } from '../lambdas/catalog';
import { withBaseUrls } from '../lambdas/core/catalog';
import { reloadConfig } from '../lambdas/config';
import { OPENAI_BASE_URL, endpointSecretName } from '../lambdas/providers/openai-compatible';
import { useSdkClientFactory } from '../lambdas/sdk';
import { startAnthropicStandIn, type AnthropicStandIn } from './anthropic-standin';
import { startBedrockStandIn, type BedrockStandIn } from './bedrock-standin';
import { custodyDeadLetterFile, startLocalEventBridge, type BusFaults, type LocalEventBridge } from './bus';
import { startOpenAIStandIn, type OpenAIStandIn } from './openai-standin';
import { startEmbeddedDynamo, type EmbeddedDynamo } from './dynamo';
import { loadStoreThread } from './store-thread';
import { localClientSettings } from './loopback';
import type { LocalServer } from './server';
import { startVertexStandIn, type VertexStandIn } from './vertex-standin';

/*
 * The whole gateway on one machine: embedded DynamoDB, the Bedrock stand-in (unless real Bedrock is reachable),
 * a local EventBridge delivering custody events to the ledger writer (on the store's thread), and the HTTP
 * server running the handlers.
 * `npm start` and the integration tests both start it through here.
 */

export interface LocalGatewayOptions {
  port?: number;
  host?: string;
  /** Persist the store here (npm start); omitted: in memory (tests). */
  dataDir?: string;
  /** Serve every provider from its stand-in even when credentials or endpoints are given (tests, bench). */
  forceStandIn?: boolean;
  /**
   * Providers the operator does not configure, as in a deployment without them (tests): Azure OpenAI gets no
   * resource endpoint (and no stand-in); OpenAI's stand-in runs, for customers' own keys, but the operator has no key.
   */
  unconfigured?: ('azure_openai' | 'openai')[];
  /** Fault injection for the custody bus (tests). */
  bus?: BusFaults;
  /** Create or register the development key (npm start). */
  devKey?: boolean;
}

export interface LocalGateway {
  url: string;
  dynamo: EmbeddedDynamo;
  standIn: BedrockStandIn | null;
  /** The OpenAI-wire stand-ins started (null: that provider is real); `openai_compatible` serves every simulated catalog endpoint. */
  openaiStandIns: Record<'azure_openai' | 'openai' | 'openai_compatible', OpenAIStandIn | null>;
  /** Each provider (an OpenAI-compatible endpoint as `openai_compatible:<name>`): where it is reached and whether it is a stand-in. */
  providers: { name: string; endpoint: string; simulated: boolean }[];
  bus: LocalEventBridge;
  /** The Vertex AI and Anthropic stand-ins, when they serve those providers. */
  vertexStandIn: VertexStandIn | null;
  anthropicStandIn: AnthropicStandIn | null;
  devKey: { keyId: string; secret?: string; source: string } | null;
  /** Resolves once every answered request is settled and its custody event is in the ledger (or dead-lettered). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * One process serves every request here, so after-response writes wait this long to share store calls with other
 * requests': long enough for back-to-back requests to meet, short enough that usage and receipts appear at once to
 * a person. (In Lambda an environment serves one request at a time: the window is 0.)
 */
const GROUP_COMMIT_MS = 100;

/**
 * V8 lets a heap grow up to 4x what survived its last full collection before collecting again; with one process
 * holding the handlers, the bus and the embedded store's thread, that slack would be most of the runtime's memory
 * under load. 1.5x keeps it small at no measurable CPU cost (the figures are in the bench's output).
 */
const HEAP_GROWING_PERCENT = 50;

/**
 * A credential for `provider` the gateway would use: a secret ARN, or an entry of the secrets file. Read here only
 * to decide between the real provider and its stand-in; the value is not kept.
 */
function hasCredential(provider: string): boolean {
  if ((JSON.parse(process.env.NI_PROVIDER_SECRET_ARNS || '{}') as Record<string, unknown>)[provider]) return true;
  const file = process.env.NI_PROVIDER_SECRETS_FILE;
  return Boolean(file && (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)[provider]);
}

/**
 * Gives the gateway the stand-ins' credentials through a secrets file of its own (mode 0600, in the state
 * directory): the configured file's entries for the real providers, plus the stand-ins'.
 */
function useStandInSecrets(dir: string | undefined, standIns: Record<string, string>): void {
  const current = process.env.NI_PROVIDER_SECRETS_FILE;
  const values = { ...(current ? (JSON.parse(readFileSync(current, 'utf8')) as Record<string, unknown>) : {}), ...standIns };
  const file = join(dir ?? mkdtempSync(join(tmpdir(), 'ni-secrets-')), 'standin-secrets.json');
  writeFileSync(file, JSON.stringify(values), { mode: 0o600 });
  process.env.NI_PROVIDER_SECRETS_FILE = file;
}

/**
 * The stand-ins' credentials, made once per process: the gateway's secret source caches each provider's
 * credential for the life of the process, as it does in Lambda, so a runtime started again keeps them.
 */
let standInCredentials: { anthropicKey: string; vertexKey: KeyObject } | undefined;

const hasAwsCredentials = () => Boolean(process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE || process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI);

/** The credential every stand-in accepts (it checks that one is sent, as the real API does, never its value). */
const STAND_IN_CREDENTIAL = 'stand-in';

/**
 * Starts a stand-in for each OpenAI-wire provider that has no real endpoint or credential: Azure OpenAI unless
 * NI_AZURE_OPENAI_ENDPOINT is set, OpenAI unless NI_OPENAI_BASE_URL is set or the secrets file holds an `openai`
 * key, and each catalog endpoint whose base URL NI_OPENAI_COMPATIBLE_BASE_URLS does not override. Points the
 * environment at them, appends them to `simulated`, and gives them stand-in credentials (a secrets file in
 * `stateDir` holding the given file's entries plus those).
 */
async function startOpenAIStandIns(force: boolean, unconfigured: string[], simulated: string[], standInSecrets: Record<string, string>): Promise<LocalGateway['openaiStandIns']> {
  const cfg = reloadConfig();
  const started: LocalGateway['openaiStandIns'] = { azure_openai: null, openai: null, openai_compatible: null };
  if (unconfigured.includes('azure_openai')) delete process.env.NI_AZURE_OPENAI_ENDPOINT;
  else if (force || !cfg.endpoints.azure_openai) {
    started.azure_openai = await startOpenAIStandIn({ flavor: 'azure' });
    process.env.NI_AZURE_OPENAI_ENDPOINT = started.azure_openai.url;
    standInSecrets.azure_openai = STAND_IN_CREDENTIAL;
    simulated.push('azure_openai');
  }
  if (force || !(cfg.endpoints.openai || hasCredential('openai'))) {
    started.openai = await startOpenAIStandIn({ flavor: 'openai' });
    process.env.NI_OPENAI_BASE_URL = `${started.openai.url}/v1`;
    if (!unconfigured.includes('openai')) standInSecrets.openai = STAND_IN_CREDENTIAL;
    simulated.push('openai');
  }
  const endpoints = Object.entries(catalog().endpoints).filter(([name]) => force || !(name in cfg.openaiCompatibleBaseUrls));
  if (endpoints.length) {
    // Endpoints with and without a credential share it: it records whether one came, and takes either.
    const s = (started.openai_compatible = await startOpenAIStandIn({ flavor: 'openai', credentialRequired: false }));
    const urls = { ...cfg.openaiCompatibleBaseUrls };
    for (const [name, e] of endpoints) {
      urls[name] = `${s.url}/${name}/v1`; // one server, a base path per endpoint: its request log tells them apart
      if (e.secret) standInSecrets[endpointSecretName(name)] = STAND_IN_CREDENTIAL;
      simulated.push(`openai_compatible:${name}`);
    }
    process.env.NI_OPENAI_COMPATIBLE_BASE_URLS = JSON.stringify(urls);
  }
  return started;
}

export async function startLocalGateway(opts: LocalGatewayOptions = {}): Promise<LocalGateway> {
  catalog(); // a broken catalog stops start-up here, with the message naming the bad entry
  useSdkClientFactory(localClientSettings);
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`); // process-wide, so before the store's thread starts
  const dynamo = await startEmbeddedDynamo({ dataDir: opts.dataDir });
  dynamo.applyEnv();
  process.env.NI_DATA_DIR ??= opts.dataDir;
  const stateDir = process.env.NI_DATA_DIR;
  if (stateDir) {
    // Only its owner reads the local state (ledger signing key, custody events). Where `ni` finds the running store.
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    chmodSync(stateDir, 0o700);
    writeFileSync(join(stateDir, 'dynamodb-endpoint'), `${dynamo.endpoint}\n`, { mode: 0o600 });
  }
  process.env.NI_METRICS ??= 'off'; // EMF lines are for CloudWatch; locally usage is seen with /api/usage and `ni usage`
  process.env.NI_GATEWAY_REGION ??= 'local';

  let standIn: BedrockStandIn | null = null;
  const simulated: string[] = [];
  const useStandIn = opts.forceStandIn || (!process.env.NI_BEDROCK_ENDPOINT && !hasAwsCredentials());
  if (useStandIn) {
    standIn = await startBedrockStandIn({ quiet: true });
    process.env.NI_BEDROCK_ENDPOINT = standIn.url;
    simulated.push('bedrock');
  }
  const standInSecrets: Record<string, string> = {};
  const openaiStandIns = await startOpenAIStandIns(Boolean(opts.forceStandIn), opts.unconfigured ?? [], simulated, standInSecrets);
  // Vertex AI and Anthropic: their stand-ins unless a credential or an endpoint override is given.
  standInCredentials ??= { anthropicKey: `sk-ant-standin-${randomUUID()}`, vertexKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey };
  let vertexStandIn: VertexStandIn | null = null;
  // Vertex AI is real with an endpoint override, a key, or workload identity federation (which needs no key).
  if (opts.forceStandIn || (!process.env.NI_VERTEX_ENDPOINT && !hasCredential('vertex_ai') && !process.env.NI_VERTEX_WORKLOAD_IDENTITY_AUDIENCE)) {
    vertexStandIn = await startVertexStandIn({ privateKey: standInCredentials.vertexKey });
    process.env.NI_VERTEX_ENDPOINT = vertexStandIn.url;
    standInSecrets.vertex_ai = JSON.stringify(vertexStandIn.serviceAccountKey);
    simulated.push('vertex_ai');
  }
  let anthropicStandIn: AnthropicStandIn | null = null;
  if (opts.forceStandIn || (!process.env.NI_ANTHROPIC_BASE_URL && !hasCredential('anthropic'))) {
    anthropicStandIn = await startAnthropicStandIn({ apiKey: standInCredentials.anthropicKey });
    process.env.NI_ANTHROPIC_BASE_URL = anthropicStandIn.url;
    standInSecrets.anthropic = anthropicStandIn.apiKey;
    simulated.push('anthropic');
  }
  if (Object.keys(standInSecrets).length) useStandInSecrets(stateDir, standInSecrets);
  process.env.NI_SIMULATED_PROVIDERS = simulated.join(',');

  // After-response writes of requests finishing within this window share store calls (group-commit.ts).
  process.env.NI_GROUP_COMMIT_MS ??= String(GROUP_COMMIT_MS);
  // The ledger writer runs on the store's thread, loaded now that the environment it reads is set.
  const bus = await startLocalEventBridge({ ...opts.bus, deliver: loadStoreThread(dynamo) });
  process.env.NI_EVENTBRIDGE_ENDPOINT = bus.endpoint;
  process.env.NI_EVENT_BUS_NAME ??= 'ni-local-custody';
  const cfg = reloadConfig();

  const { redriveOutbox } = await import('../lambdas/store/custody-events');
  await redriveOutbox();
  await redriveOutbox({ file: custodyDeadLetterFile() });
  const devKey = opts.devKey ? await (await import('./dev-key')).ensureDevKey() : null;
  const { startServer } = await import('./server');
  const server: LocalServer = await startServer({ port: opts.port, host: opts.host });
  // Where `ni accounts invite` finds the portal it prints sign-in links for.
  if (stateDir) writeFileSync(join(stateDir, 'gateway-url'), `${server.url}\n`, { mode: 0o600 });

  return {
    url: server.url,
    dynamo,
    standIn,
    bus,
    openaiStandIns,
    providers: [
      { name: 'bedrock', endpoint: cfg.endpoints.bedrock ?? 'AWS Bedrock Runtime (per route region)' },
      { name: 'azure_openai', endpoint: cfg.endpoints.azure_openai ?? 'not configured (NI_AZURE_OPENAI_ENDPOINT)' },
      { name: 'openai', endpoint: cfg.endpoints.openai ?? OPENAI_BASE_URL },
      { name: 'vertex_ai', endpoint: cfg.endpoints.vertex_ai ?? 'Vertex AI (each route region\'s endpoint)' },
      { name: 'anthropic', endpoint: cfg.endpoints.anthropic ?? 'https://api.anthropic.com' },
      ...Object.entries(withBaseUrls(catalog().endpoints, cfg.openaiCompatibleBaseUrls)).map(([name, e]) => ({ name: `openai_compatible:${name}`, endpoint: e.base_url ?? 'not configured (NI_OPENAI_COMPATIBLE_BASE_URLS)' })),
    ].map((p) => ({ ...p, simulated: cfg.simulatedProviders.has(p.name) })),
    vertexStandIn,
    anthropicStandIn,
    devKey,
    async flush() {
      await server.idle();
      await bus.flush();
    },
    async close() {
      await server.close();
      await bus.flush();
      await bus.close();
      await standIn?.close();
      for (const s of Object.values(openaiStandIns)) await s?.close();
      await vertexStandIn?.close();
      await anthropicStandIn?.close();
      const { resetDdb } = await import('../lambdas/store/ddb');
      const { resetEventBridge } = await import('../lambdas/store/custody-events');
      resetDdb();
      resetEventBridge();
      await dynamo.close();
    },
  };
}
