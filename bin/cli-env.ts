import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { reloadConfig } from '../lambdas/config';
import { useSdkClientFactory } from '../lambdas/sdk';
import { resetDdb } from '../lambdas/store/ddb';
import { TABLES, type TableName } from '../lambdas/store/tables';
import { STACK_OUTPUTS } from '../lib/outputs';
import { localClientSettings } from '../local/loopback';

/** A mistake in how a command was called: the command prints it and exits 2. */
export class UsageError extends Error {}

type FlagSpec = NonNullable<ParseArgsConfig['options']>;

/** Flags every command takes. */
export const COMMON_FLAGS = {
  region: { type: 'string' },
  stack: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** node:util parseArgs, strict, with the common flags; its errors ("Unknown option '--x'") become UsageErrors. */
export function parseFlags<const S extends FlagSpec>(argv: string[], spec: S) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_FLAGS, ...spec }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** How a command is called: its usage text (first line: the synopsis) and its own flags. */
export interface CommandSpec<S extends FlagSpec> {
  usage: string;
  flags: S;
  /** `ni <command> help` prints the usage too (commands whose first argument is a subcommand). */
  helpSubcommand?: boolean;
}

/**
 * Runs a command: parses argv (parseFlags) and answers --help with the usage on stdout, exit 0; otherwise the
 * body's exit code. UsageError → its message and the synopsis on stderr, exit 2; any other error → its message,
 * exit 1.
 */
export async function runCommand<const S extends FlagSpec>(
  spec: CommandSpec<S>,
  argv: string[],
  body: (parsed: ReturnType<typeof parseFlags<S>>) => Promise<number>,
): Promise<number> {
  try {
    const parsed = parseFlags(argv, spec.flags);
    const { help } = parsed.values as { help?: boolean }; // COMMON_FLAGS: TypeScript cannot see it through a generic spec
    if (help || (spec.helpSubcommand && parsed.positionals[0] === 'help')) {
      console.log(spec.usage);
      return 0;
    }
    return await body(parsed);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    if (err instanceof UsageError) {
      console.error(`${spec.usage.split('\n')[0]}  (--help for all options)`);
      return 2;
    }
    return 1;
  }
}

export interface CliEnv {
  mode: 'local' | 'stack';
  region?: string;
  stack?: string;
  /** Local mode: the embedded DynamoDB of a running `npm start`. */
  dynamodbEndpoint?: string;
  tables: Record<TableName, string>;
  apiUrl?: string;
  eventBusName?: string;
  custodyFallbackQueueUrl?: string;
  ledgerSigningKeyId?: string;
  ledgerAnchorBucket?: string;
  byokKmsKeyId?: string;
  dashboardName?: string;
  /** Points this process's store modules at this environment (process.env + a fresh DynamoDB client). */
  apply(): void;
}

/** Local mode without --region/--stack, the deployed stack's outputs with both. */
export async function resolveCliEnv(flags: { region?: string; stack?: string }): Promise<CliEnv> {
  if (!flags.region !== !flags.stack) throw new UsageError('--region and --stack go together (both or neither)');
  const fields = flags.region && flags.stack ? await stackFields(flags.region, flags.stack) : await localFields();
  return {
    ...fields,
    apply() {
      const env = process.env;
      if (fields.dynamodbEndpoint) env.NI_DYNAMODB_ENDPOINT = fields.dynamodbEndpoint;
      else delete env.NI_DYNAMODB_ENDPOINT; // a stray local endpoint must not redirect a stack command
      if (fields.region) env.AWS_REGION = fields.region;
      for (const t of Object.keys(TABLES) as TableName[]) env[TABLES[t].env] = fields.tables[t];
      const optional = {
        NI_EVENT_BUS_NAME: fields.eventBusName,
        NI_CUSTODY_FALLBACK_QUEUE_URL: fields.custodyFallbackQueueUrl,
        NI_LEDGER_SIGNING_KEY_ID: fields.ledgerSigningKeyId,
        NI_LEDGER_ANCHOR_BUCKET: fields.ledgerAnchorBucket,
        NI_BYOK_KMS_KEY_ID: fields.byokKmsKeyId,
      };
      for (const [name, value] of Object.entries(optional)) if (value) env[name] = value;
      // The local runtime's store takes unsigned calls (local/loopback.ts); a stack's is reached as AWS's.
      if (fields.mode === 'local') useSdkClientFactory(localClientSettings);
      reloadConfig();
      resetDdb();
    },
  };
}

type Fields = Omit<CliEnv, 'apply'>;

async function localFields(): Promise<Fields> {
  const file = join(process.env.NI_DATA_DIR || '.ni-data', 'dynamodb-endpoint');
  const notRunning = `the local gateway is not running: start it with npm start (no DynamoDB endpoint at ${file}; `
    + 'or pass --region and --stack for a deployed stack)';
  let endpoint: string;
  try {
    endpoint = readFileSync(file, 'utf8').trim();
  } catch {
    throw new Error(notRunning);
  }
  if (!(await reachable(endpoint))) throw new Error(notRunning.replace('no DynamoDB endpoint at', 'nothing answers at the endpoint in'));
  const tables = Object.fromEntries(Object.entries(TABLES).map(([t, d]) => [t, d.local])) as Record<TableName, string>;
  return { mode: 'local', dynamodbEndpoint: endpoint, tables };
}

/** A stale endpoint file (npm start killed) would otherwise end in SDK retries and a connection error. */
function reachable(endpoint: string): Promise<boolean> {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port || 80), timeout: 2_000 });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.once('connect', () => done(true)).once('error', () => done(false)).once('timeout', () => done(false));
  });
}

async function stackFields(region: string, stack: string): Promise<Fields> {
  const client = new CloudFormationClient({ region });
  let outputs: Record<string, string>;
  try {
    const out = await client.send(new DescribeStacksCommand({ StackName: stack }));
    outputs = Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (err) {
    throw new Error(`cannot read stack ${stack} in ${region}: ${(err as Error).message}`);
  } finally {
    client.destroy();
  }
  const required = (name: string) => {
    if (!outputs[name]) throw new Error(`stack ${stack} in ${region} has no output ${name}: is it a Northern Inference stack?`);
    return outputs[name];
  };
  const o = STACK_OUTPUTS;
  return {
    mode: 'stack',
    region,
    stack,
    tables: { keys: required(o.keysTable), usage: required(o.usageTable), ledger: required(o.ledgerTable) },
    apiUrl: outputs[o.apiUrl] || undefined,
    eventBusName: outputs[o.eventBusName] || undefined,
    custodyFallbackQueueUrl: outputs[o.custodyFallbackQueueUrl] || undefined,
    ledgerSigningKeyId: outputs[o.ledgerSigningKeyId] || undefined,
    ledgerAnchorBucket: outputs[o.ledgerAnchorBucket] || undefined,
    byokKmsKeyId: outputs[o.byokKmsKeyId] || undefined,
    dashboardName: outputs[o.dashboardName] || undefined,
  };
}
