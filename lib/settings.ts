import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import * as z from 'zod';
import { catalog } from '../lambdas/catalog';

/*
 * A deployment's settings, from CDK context (`-c name=value`, or `context` in cdk.json): every name below is
 * optional and documented in the README. `-c` values arrive as strings, cdk.json ones as JSON: both are read.
 */

/** The stage whose stack keeps the historical name `NorthernInference`; another stage adds `-<stage>`. */
export const DEFAULT_STAGE = 'prod';

/** The gateway function's memory unless context gatewayMemoryMB says otherwise (`npm run cost` prices it). */
export const DEFAULT_GATEWAY_MEMORY_MB = 256;

const Count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** An object given as JSON text (`-c name='{…}'`) or as an object (cdk.json). */
const jsonObject = <T>(schema: z.ZodType<T>, what: string) => z.unknown().transform((v, ctx): T => {
  try {
    return schema.parse(typeof v === 'string' ? JSON.parse(v) : v);
  } catch {
    ctx.addIssue({ code: 'custom', message: `a JSON object of ${what}` });
    return z.NEVER;
  }
});
const RETENTION_DAYS = Object.values(logs.RetentionDays).filter((d): d is number => typeof d === 'number' && d > 0);

const ContextSchema = z.object({
  /** API Gateway stage and stack suffix, so `staging` and `prod` can live side by side in one account. */
  stage: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'lower-case letters, digits and dashes, starting with a letter').default(DEFAULT_STAGE),
  /** Custom domain of the API, e.g. `api.example.ca`: clients use `https://<domainName>/v1`. */
  domainName: z.string().regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'a lower-case DNS name like api.example.ca').optional(),
  /** Route 53 public zone holding domainName: the stack creates the certificate (DNS-validated) and the alias record. */
  hostedZoneName: z.string().min(1).optional(),
  /** That zone's id, so `cdk synth` needs no AWS lookup; without it CDK looks the zone up by name (credentials needed once). */
  hostedZoneId: z.string().regex(/^Z[A-Z0-9]{1,31}$/, 'a Route 53 zone id like Z0123456789ABCDEFGHIJ').optional(),
  /** An existing ACM certificate for domainName instead: it must be in ca-central-1, as a Regional domain requires. */
  certificateArn: z.string().regex(/^arn:aws:acm:ca-central-1:\d{12}:certificate\/[0-9a-f-]+$/, 'an ACM certificate ARN in ca-central-1').optional(),
  /** Where alarms go: this address is subscribed to the stack's alarm topic (AWS e-mails a confirmation link). */
  alarmEmail: z.email().optional(),
  /** Or an existing SNS topic (in ca-central-1) that already reaches someone, instead of the stack's own. */
  alarmTopicArn: z.string().regex(/^arn:aws:sns:ca-central-1:\d{12}:[A-Za-z0-9_-]{1,256}$/, 'an SNS topic ARN in ca-central-1').optional(),
  /** Stage-wide steady requests per second and burst (API Gateway's token bucket). */
  throttlingRateLimit: Count(1, 10_000).default(50),
  throttlingBurstLimit: Count(1, 5_000).default(100),
  /**
   * The gateway function's memory (MB). Lambda bills memory × wall-clock time, and a stream spends its seconds
   * waiting on Bedrock; CPU (which scales with memory) matters only for the milliseconds of parsing and PII
   * scanning before the first token. The README's cost section gives the measurements behind the default.
   */
  gatewayMemoryMB: Count(128, 10_240).default(DEFAULT_GATEWAY_MEMORY_MB),
  /** Pre-initialized gateway environments (billed while idle); 0 = none, cold starts included. */
  provisionedConcurrency: Count(0, 1_000).default(0),
  /** The Azure OpenAI resource (in Canada East) whose Standard deployments serve the catalog's azure_openai routes. */
  azureOpenAIEndpoint: z.url({ protocol: /^https$/ }).optional(),
  /**
   * Base URLs of the catalog's OpenAI-compatible endpoints (a self-hosted vLLM, a sovereign host): JSON
   * `{"sovereign-vllm": "https://…/v1"}`. An endpoint given none here or in the catalog is not served.
   */
  openaiCompatibleBaseUrls: jsonObject(z.record(z.string(), z.url({ protocol: /^https$/ })), 'endpoint names to https base URLs').optional(),
  /**
   * Vertex AI by workload identity federation from the gateway's role instead of a service-account key: the pool
   * provider (`//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`),
   * the service account it impersonates, and the project Vertex AI bills.
   */
  vertexWorkloadIdentityAudience: z.string().regex(/^\/\/iam\.googleapis\.com\/projects\/\d+\/locations\/global\/workloadIdentityPools\/[a-z0-9-]+\/providers\/[a-z0-9-]+$/,
    'a pool provider like //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER').optional(),
  vertexServiceAccount: z.email().optional(),
  vertexProjectId: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a Google Cloud project id').optional(),
  /**
   * How long each anchored ledger checkpoint is locked, in days (S3 Object Lock, compliance mode: it cannot be
   * shortened, and the bucket cannot be deleted while it holds locked objects). A short value suits test stages.
   */
  ledgerAnchorRetentionDays: Count(1, 36_500).default(3_650),
  /** Retention of every log group of the stack, in days: one of CloudWatch Logs' allowed values. */
  logRetentionDays: z.coerce.number().refine((d) => RETENTION_DAYS.includes(d), `one of ${RETENTION_DAYS.join(', ')}`).default(90),
}).superRefine((s, ctx) => {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (s.domainName && !s.hostedZoneName && !s.certificateArn) issue('domainName', 'needs hostedZoneName (a certificate is created) or certificateArn');
  if (!s.domainName) {
    for (const k of ['hostedZoneName', 'hostedZoneId', 'certificateArn'] as const) if (s[k]) issue(k, 'only applies with domainName');
  }
  if (s.hostedZoneId && !s.hostedZoneName) issue('hostedZoneId', 'goes with hostedZoneName');
  if (s.domainName && s.hostedZoneName && !`.${s.domainName}`.endsWith(`.${s.hostedZoneName.replace(/\.$/, '')}`)) {
    issue('hostedZoneName', `${s.domainName} is not in ${s.hostedZoneName}`);
  }
  if (s.alarmEmail && s.alarmTopicArn) issue('alarmEmail', 'give alarmEmail or alarmTopicArn, not both');
  const unknown = Object.keys(s.openaiCompatibleBaseUrls ?? {}).filter((name) => !(name in catalog().endpoints));
  if (unknown.length) issue('openaiCompatibleBaseUrls', `not endpoints of the catalog: ${unknown.join(', ')}`);
  if (s.vertexWorkloadIdentityAudience && !s.vertexProjectId) issue('vertexWorkloadIdentityAudience', 'needs vertexProjectId');
  if (s.vertexServiceAccount && !s.vertexWorkloadIdentityAudience) issue('vertexServiceAccount', 'only applies with vertexWorkloadIdentityAudience');
  if (s.throttlingBurstLimit < Math.min(s.throttlingRateLimit, 5_000)) issue('throttlingBurstLimit', 'must be at least throttlingRateLimit');
});

export type Settings = z.infer<typeof ContextSchema>;
export const SETTING_NAMES = Object.keys(ContextSchema.shape) as (keyof Settings)[];

export class SettingsError extends Error {}

/** The validated settings of `scope`'s app; an invalid value stops the synth with every problem named. */
export function settings(scope: Construct): Settings {
  const raw = Object.fromEntries(SETTING_NAMES.map((name) => [name, scope.node.tryGetContext(name)]).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = ContextSchema.safeParse(raw);
  if (!parsed.success) {
    throw new SettingsError(`Invalid context: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** The stack of a stage: `NorthernInference` for prod (the name deployed stacks and the CLI already use). */
export const stackNameFor = (stage: string): string => (stage === DEFAULT_STAGE ? 'NorthernInference' : `NorthernInference-${stage}`);
