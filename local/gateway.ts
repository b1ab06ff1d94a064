import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { catalog } from '../lambdas/catalog';
import { reloadConfig } from '../lambdas/config';
import { useSdkClientFactory } from '../lambdas/sdk';
import { startAnthropicStandIn, type AnthropicStandIn } from './anthropic-standin';
import { startBedrockStandIn, type BedrockStandIn } from './bedrock-standin';
import { startLocalEventBridge, type BusFaults, type LocalEventBridge } from './bus';
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
  /** Serve every provider from its stand-in even when real credentials are present (tests, bench). */
  forceStandIn?: boolean;
  /** Fault injection for the custody bus (tests). */
  bus?: BusFaults;
  /** Create or register the development key (npm start). */
  devKey?: boolean;
}

export interface LocalGateway {
  url: string;
  dynamo: EmbeddedDynamo;
  standIn: BedrockStandIn | null;
  bus: LocalEventBridge;
  /** `real` endpoints serve real data; the stand-in is a simulation. */
  bedrock: { endpoint: string; simulated: boolean };
  /** The Vertex AI and Anthropic stand-ins, when they serve those providers. */
  vertexStandIn: VertexStandIn | null;
  anthropicStandIn: AnthropicStandIn | null;
  /** Where the Vertex AI and Anthropic providers' calls go, and whether that is a stand-in. */
  upstreams: Record<'vertex_ai' | 'anthropic', { endpoint: string; simulated: boolean }>;
  devKey: { keyId: string; secret?: string; source: string } | null;
  /** Resolves once every answered request is settled and its custody event is in the ledger (or dead-lettered). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Long enough for back-to-back requests to share store calls (bench, 20 ms apart: added latency p50 2.8 ms with a
 * 20 ms window, 1.1 ms with this one), short enough that usage and receipts appear at once to a person.
 */
const GROUP_COMMIT_MS = 100;

/**
 * V8 lets a heap grow up to 4x what survived its last full collection before collecting again; with one process
 * holding the handlers, the bus and the embedded store's thread, that slack was most of the runtime's memory under
 * load. At 1.5x, 8,000 requests 32 at a time peaked at 250 MB RSS instead of 330-365 MB (2x: 275 MB); the CPU per
 * request moved within this machine's run-to-run noise (about ±15%).
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

export async function startLocalGateway(opts: LocalGatewayOptions = {}): Promise<LocalGateway> {
  catalog(); // a broken catalog stops start-up here, with the message naming the bad entry
  useSdkClientFactory(localClientSettings);
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`); // process-wide, so before the store's thread starts
  const dynamo = await startEmbeddedDynamo({ dataDir: opts.dataDir });
  dynamo.applyEnv();
  process.env.NI_DATA_DIR ??= opts.dataDir;
  const stateDir = process.env.NI_DATA_DIR;
  if (stateDir) {
    // Where `ni` finds the running store.
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, 'dynamodb-endpoint'), `${dynamo.endpoint}\n`);
  }
  process.env.NI_METRICS ??= 'off'; // EMF lines are for CloudWatch; locally usage is seen with /api/usage and `ni usage`
  process.env.NI_GATEWAY_REGION ??= 'local';

  let standIn: BedrockStandIn | null = null;
  const useStandIn = opts.forceStandIn || (!process.env.NI_BEDROCK_ENDPOINT && !hasAwsCredentials());
  if (useStandIn) {
    standIn = await startBedrockStandIn({ quiet: true });
    process.env.NI_BEDROCK_ENDPOINT = standIn.url;
    process.env.NI_SIMULATED_PROVIDERS = 'bedrock';
  }
  // Vertex AI and Anthropic: their stand-ins unless a credential or an endpoint override is given.
  const simulated = new Set((process.env.NI_SIMULATED_PROVIDERS ?? '').split(',').filter(Boolean));
  const standInSecrets: Record<string, string> = {};
  standInCredentials ??= { anthropicKey: `sk-ant-standin-${randomUUID()}`, vertexKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey };
  let vertexStandIn: VertexStandIn | null = null;
  if (opts.forceStandIn || (!process.env.NI_VERTEX_ENDPOINT && !hasCredential('vertex_ai'))) {
    vertexStandIn = await startVertexStandIn({ privateKey: standInCredentials.vertexKey });
    process.env.NI_VERTEX_ENDPOINT = vertexStandIn.url;
    standInSecrets.vertex_ai = JSON.stringify(vertexStandIn.serviceAccountKey);
    simulated.add('vertex_ai');
  }
  let anthropicStandIn: AnthropicStandIn | null = null;
  if (opts.forceStandIn || (!process.env.NI_ANTHROPIC_BASE_URL && !hasCredential('anthropic'))) {
    anthropicStandIn = await startAnthropicStandIn({ apiKey: standInCredentials.anthropicKey });
    process.env.NI_ANTHROPIC_BASE_URL = anthropicStandIn.url;
    standInSecrets.anthropic = anthropicStandIn.apiKey;
    simulated.add('anthropic');
  }
  if (Object.keys(standInSecrets).length) useStandInSecrets(stateDir, standInSecrets);
  process.env.NI_SIMULATED_PROVIDERS = [...simulated].join(',');

  // After-response writes of requests finishing within this window share store calls (group-commit.ts).
  process.env.NI_GROUP_COMMIT_MS ??= String(GROUP_COMMIT_MS);
  // The ledger writer runs on the store's thread, loaded now that the environment it reads is set.
  const bus = await startLocalEventBridge({ ...opts.bus, deliver: loadStoreThread(dynamo) });
  process.env.NI_EVENTBRIDGE_ENDPOINT = bus.endpoint;
  process.env.NI_EVENT_BUS_NAME ??= 'ni-local-custody';
  const cfg = reloadConfig();

  const { redriveOutbox } = await import('../lambdas/store/custody-events');
  await redriveOutbox();
  const devKey = opts.devKey ? await (await import('./dev-key')).ensureDevKey() : null;
  const { startServer } = await import('./server');
  const server: LocalServer = await startServer({ port: opts.port, host: opts.host });

  return {
    url: server.url,
    dynamo,
    standIn,
    bus,
    bedrock: { endpoint: cfg.endpoints.bedrock ?? 'AWS Bedrock Runtime (per route region)', simulated: cfg.simulatedProviders.has('bedrock') },
    vertexStandIn,
    anthropicStandIn,
    upstreams: {
      vertex_ai: { endpoint: cfg.endpoints.vertex_ai ?? 'Vertex AI (each route region\'s endpoint)', simulated: cfg.simulatedProviders.has('vertex_ai') },
      anthropic: { endpoint: cfg.endpoints.anthropic ?? 'https://api.anthropic.com', simulated: cfg.simulatedProviders.has('anthropic') },
    },
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
