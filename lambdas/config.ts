import * as z from 'zod';
import { DEFAULT_KEY_CACHE_TTL_MS } from './core/keys';
import { DEFAULT_CHECKPOINT_POLICY } from './core/ledger';

/**
 * The one reader of the environment. Every variable the gateway's code takes is declared here (and listed in the
 * README), validated once per process: a bad value stops the function's init (or `npm start`) naming it.
 */

const NonNegative = z.coerce.number().int().nonnegative();
const Positive = z.coerce.number().int().positive();
const Url = z.url();

/** A JSON object of names to values, in one variable. */
const jsonRecord = (value: z.ZodType<string>, what: string) => z.string().transform((v, ctx) => {
  try {
    return z.record(z.string(), value).parse(JSON.parse(v));
  } catch {
    ctx.addIssue({ code: 'custom', message: `a JSON object of ${what}` });
    return z.NEVER;
  }
});

const Env = z.object({
  AWS_REGION: z.string().min(1).default('ca-central-1'),
  /** The region the gateway itself runs in, as named in custody paths (the stack sets it; locally `local`). */
  NI_GATEWAY_REGION: z.string().min(1).optional(),
  NI_LOG_LEVEL: z.string().toUpperCase().pipe(z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT', 'CRITICAL'])).default('INFO'),
  NI_METRICS: z.enum(['on', 'off']).default('on'),
  NI_CATALOG_FILE: z.string().min(1).optional(),
  NI_KEYS_TABLE: z.string().min(1).optional(),
  NI_USAGE_TABLE: z.string().min(1).optional(),
  NI_LEDGER_TABLE: z.string().min(1).optional(),
  NI_DYNAMODB_ENDPOINT: Url.optional(),
  NI_EVENTBRIDGE_ENDPOINT: Url.optional(),
  NI_EVENT_BUS_NAME: z.string().min(1).optional(),
  NI_CUSTODY_FALLBACK_QUEUE_URL: Url.optional(),
  NI_BEDROCK_ENDPOINT: Url.optional(),
  /** The Azure OpenAI resource's endpoint, e.g. https://my-resource.openai.azure.com (or a stand-in). */
  NI_AZURE_OPENAI_ENDPOINT: Url.optional(),
  NI_OPENAI_BASE_URL: Url.optional(),
  /** JSON `{endpoint name: base URL}`: replaces the base URLs of the catalog's OpenAI-compatible endpoints. */
  NI_OPENAI_COMPATIBLE_BASE_URLS: jsonRecord(Url, 'catalog endpoint names to base URLs').optional(),
  NI_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: Positive.optional(),
  NI_VERTEX_ENDPOINT: Url.optional(),
  NI_VERTEX_PROJECT_ID: z.string().min(1).optional(),
  /** Workload identity federation: the pool provider Google's STS exchanges the function's signed AWS identity at. */
  NI_VERTEX_WORKLOAD_IDENTITY_AUDIENCE: z.string().regex(/^\/\/iam\.googleapis\.com\/projects\/\d+\/locations\/global\/workloadIdentityPools\/[a-z0-9-]+\/providers\/[a-z0-9-]+$/,
    'a pool provider like //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER').optional(),
  /** The service account the federated identity impersonates (its e-mail). */
  NI_VERTEX_SERVICE_ACCOUNT: z.email().optional(),
  NI_GOOGLE_STS_ENDPOINT: Url.optional(),
  NI_GOOGLE_IAM_CREDENTIALS_ENDPOINT: Url.optional(),
  NI_ANTHROPIC_BASE_URL: Url.optional(),
  /** Providers (comma-separated) whose endpoints are the local stand-ins: their answers are marked SIMULATED. */
  NI_SIMULATED_PROVIDERS: z.string().default(''),
  /** JSON `{provider: secret ARN}`, set by the stack. */
  NI_PROVIDER_SECRET_ARNS: jsonRecord(z.string().min(1), 'provider names to secret ARNs').optional(),
  NI_PROVIDER_SECRETS_FILE: z.string().min(1).optional(),
  NI_KEY_CACHE_TTL_MS: NonNegative.default(DEFAULT_KEY_CACHE_TTL_MS),
  NI_GROUP_COMMIT_MS: NonNegative.default(0),
  /**
   * An upstream call's whole-answer deadline, from the request's start: well inside the gateway function's
   * 15-minute limit, leaving time to end the stream and record what was generated.
   */
  NI_UPSTREAM_DEADLINE_S: Positive.max(840).default(780),
  /** Until the provider accepts the call (its response headers): connecting and its first byte. */
  NI_UPSTREAM_ACCEPT_TIMEOUT_S: Positive.max(300).default(60),
  NI_DATA_DIR: z.string().min(1).default('.ni-data'),
  NI_CUSTODY_OUTBOX: z.string().min(1).optional(),
  NI_LEDGER_SIGNING_KEY_ID: z.string().min(1).optional(),
  NI_LEDGER_SIGNING_KEY_FILE: z.string().min(1).optional(),
  /** The S3 bucket signed checkpoints are anchored in (set by the stack); unset, a directory in NI_DATA_DIR. */
  NI_LEDGER_ANCHOR_BUCKET: z.string().min(1).optional(),
  NI_KMS_ENDPOINT: Url.optional(),
  /** The KMS key dedicated to BYOK envelopes (set by the stack); unset, a key file in NI_DATA_DIR stands in. */
  NI_BYOK_KMS_KEY_ID: z.string().min(1).optional(),
  NI_BYOK_KEY_FILE: z.string().min(1).optional(),
  NI_LEDGER_CHECKPOINT_EVERY: Positive.default(DEFAULT_CHECKPOINT_POLICY.every),
  NI_LEDGER_CHECKPOINT_INTERVAL_S: Positive.default(DEFAULT_CHECKPOINT_POLICY.intervalMs / 1000),
  /** The portal's Cognito user pool, its app client and its hosted sign-in domain (set by the stack). */
  NI_PORTAL_USER_POOL_ID: z.string().regex(/^[\w-]+_[0-9a-zA-Z]+$/, 'a Cognito user pool id such as ca-central-1_AbC123').optional(),
  NI_PORTAL_CLIENT_ID: z.string().min(1).optional(),
  NI_PORTAL_AUTH_DOMAIN: Url.optional(),
  /** Where the portal's built pages are (the stack bundles them beside the handler; the local runtime builds them). */
  NI_PORTAL_ASSETS_DIR: z.string().min(1).optional(),
  /** The key residency reports are signed with: a KMS key of its own (set by the stack), else a local key file. */
  NI_REPORT_SIGNING_KEY_ID: z.string().min(1).optional(),
  NI_REPORT_SIGNING_KEY_FILE: z.string().min(1).optional(),
});

export function parseConfig(env: Record<string, string | undefined>) {
  // An empty variable counts as unset (`FOO= npm start`).
  const set = Object.fromEntries(Object.entries(env).filter(([k, v]) => k in Env.shape && v !== undefined && v !== ''));
  const parsed = Env.safeParse(set);
  if (!parsed.success) {
    throw new Error(`Invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const e = parsed.data;
  return {
    region: e.AWS_REGION,
    gatewayRegion: e.NI_GATEWAY_REGION ?? e.AWS_REGION,
    logLevel: e.NI_LOG_LEVEL,
    metrics: e.NI_METRICS === 'on',
    catalogFile: e.NI_CATALOG_FILE,
    tables: { keys: e.NI_KEYS_TABLE, usage: e.NI_USAGE_TABLE, ledger: e.NI_LEDGER_TABLE },
    endpoints: { dynamodb: e.NI_DYNAMODB_ENDPOINT, eventbridge: e.NI_EVENTBRIDGE_ENDPOINT, bedrock: e.NI_BEDROCK_ENDPOINT, kms: e.NI_KMS_ENDPOINT,
      azure_openai: e.NI_AZURE_OPENAI_ENDPOINT, openai: e.NI_OPENAI_BASE_URL, vertex_ai: e.NI_VERTEX_ENDPOINT, anthropic: e.NI_ANTHROPIC_BASE_URL },
    openaiCompatibleBaseUrls: e.NI_OPENAI_COMPATIBLE_BASE_URLS ?? {},
    upstreamFirstByteTimeoutMs: e.NI_UPSTREAM_FIRST_BYTE_TIMEOUT_MS,
    vertexProject: e.NI_VERTEX_PROJECT_ID,
    vertexWorkloadIdentity: e.NI_VERTEX_WORKLOAD_IDENTITY_AUDIENCE === undefined ? undefined : {
      audience: e.NI_VERTEX_WORKLOAD_IDENTITY_AUDIENCE,
      serviceAccount: e.NI_VERTEX_SERVICE_ACCOUNT,
      stsEndpoint: e.NI_GOOGLE_STS_ENDPOINT ?? 'https://sts.googleapis.com',
      iamCredentialsEndpoint: e.NI_GOOGLE_IAM_CREDENTIALS_ENDPOINT ?? 'https://iamcredentials.googleapis.com',
    },
    providerSecretArns: e.NI_PROVIDER_SECRET_ARNS ?? {},
    providerSecretsFile: e.NI_PROVIDER_SECRETS_FILE,
    simulatedProviders: new Set(e.NI_SIMULATED_PROVIDERS.split(',').map((s) => s.trim()).filter(Boolean)),
    keyCacheTtlMs: e.NI_KEY_CACHE_TTL_MS,
    groupCommitMs: e.NI_GROUP_COMMIT_MS,
    upstreamDeadlines: { acceptMs: e.NI_UPSTREAM_ACCEPT_TIMEOUT_S * 1000, totalMs: e.NI_UPSTREAM_DEADLINE_S * 1000 },
    custody: {
      eventBusName: e.NI_EVENT_BUS_NAME,
      fallbackQueueUrl: e.NI_CUSTODY_FALLBACK_QUEUE_URL,
      outboxFile: e.NI_CUSTODY_OUTBOX ?? `${e.NI_DATA_DIR}/custody-outbox.jsonl`,
    },
    portal: {
      cognito: e.NI_PORTAL_USER_POOL_ID && e.NI_PORTAL_CLIENT_ID && e.NI_PORTAL_AUTH_DOMAIN
        ? { userPoolId: e.NI_PORTAL_USER_POOL_ID, clientId: e.NI_PORTAL_CLIENT_ID, domain: e.NI_PORTAL_AUTH_DOMAIN.replace(/\/$/, '') }
        : undefined,
      assetsDir: e.NI_PORTAL_ASSETS_DIR,
      reportSigningKeyId: e.NI_REPORT_SIGNING_KEY_ID,
      reportSigningKeyFile: e.NI_REPORT_SIGNING_KEY_FILE ?? `${e.NI_DATA_DIR}/report-signing-key.pem`,
    },
    byok: {
      kmsKeyId: e.NI_BYOK_KMS_KEY_ID,
      keyFile: e.NI_BYOK_KEY_FILE ?? `${e.NI_DATA_DIR}/byok-key`,
    },
    ledger: {
      signingKeyId: e.NI_LEDGER_SIGNING_KEY_ID,
      signingKeyFile: e.NI_LEDGER_SIGNING_KEY_FILE ?? `${e.NI_DATA_DIR}/ledger-signing-key.pem`,
      anchorBucket: e.NI_LEDGER_ANCHOR_BUCKET,
      anchorDir: `${e.NI_DATA_DIR}/ledger-anchor`,
      checkpointEvery: e.NI_LEDGER_CHECKPOINT_EVERY,
      checkpointIntervalMs: e.NI_LEDGER_CHECKPOINT_INTERVAL_S * 1000,
    },
  };
}

export type Config = ReturnType<typeof parseConfig>;

let current: Config | undefined;

/** This process's configuration, read from its environment the first time it is asked for. */
export function config(): Config {
  return (current ??= parseConfig(process.env));
}

/** Reads the environment again: for a runtime or a test that changes it after something already read it. */
export function reloadConfig(): Config {
  current = undefined;
  return config();
}
