import type * as z from 'zod';
import { AUTHORIZER_CACHE_TTL_SECONDS, DEFAULT_KEY_CACHE_TTL_MS, KeyOptions, type KeyRecord, LimitsUpdate } from '../../lambdas/core/keys';
import { formatCad, parseCad } from '../../lambdas/core/pricing';
import { DEFAULT_TIMEZONE, PiiMode } from '../../lambdas/core/principal';
import { DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_REQUESTS_PER_MINUTE } from '../../lambdas/core/rate-limits';
import { DEFAULT_TIER, Tier } from '../../lambdas/core/tiers';
import { DEFAULT_ACCOUNT_ID } from '../../lambdas/core/accounts';
import { ensureDefaultAccount, getAccount } from '../../lambdas/store/accounts';
import { createKey, getById, listKeys, revokeKey, updateLimits } from '../../lambdas/store/keys';
import { resolveCliEnv, runCommand, UsageError } from '../cli-env';

/** How long a change to a key (revocation, limits) takes to reach every request: the caches of its record. */
const KEY_CHANGE_BOUND_S = AUTHORIZER_CACHE_TTL_SECONDS + Math.ceil(DEFAULT_KEY_CACHE_TTL_MS / 1000);

export const USAGE = `usage: ni keys <create|list|show|update|revoke|byok> [options]

  ni keys create --name NAME [--account ACCT] [--project P] [--tier TIER] [--pin-tier] [--allow-tiers T1,T2]
                 [--max-spend-per-day CAD] [--timezone ZONE] [--pii-mode MODE] [--default-max-tokens N]
                 [--requests-per-minute N|none] [--max-concurrent N|none] [--json]
      Creates a key and prints its secret. The secret is shown this once and never stored.
        --account            the account it belongs to (default acct_default; see ni accounts)
        --tier               default privacy tier: ${Tier.options.join(' | ')} (default ${DEFAULT_TIER})
        --pin-tier           clients cannot choose another tier
        --allow-tiers        tiers a client may ask for, comma-separated; must include --tier
                             (default: --tier and every stricter tier)
        --max-spend-per-day  daily cap in CAD, e.g. 25.00 (default: no cap)
        --timezone           IANA zone the spend day follows (default ${DEFAULT_TIMEZONE})
        --pii-mode           ${PiiMode.options.join(' | ')} (default substitute)
        --default-max-tokens output tokens asked for when a request names no max_tokens
                             (default: each model's default_max_tokens; never above its limit)
        --requests-per-minute chat completions per clock minute (default ${DEFAULT_REQUESTS_PER_MINUTE}; none: no limit)
        --max-concurrent     chat completions in progress at once (default ${DEFAULT_MAX_CONCURRENT_REQUESTS}; none: no limit)
  ni keys list [--json]        every key (never the secrets)
  ni keys show ID [--json]     one key
  ni keys update ID [--requests-per-minute N|none] [--max-concurrent N|none] [--json]
                               changes a key's request limits (the one not given is kept); requests
                               follow the new limits within ${KEY_CHANGE_BOUND_S} seconds
  ni keys revoke ID            revokes a key; it stops working within ${KEY_CHANGE_BOUND_S} seconds
  ni keys byok set|show|clear ID ...   the key's own provider credentials (ni keys byok --help)

  --region REGION --stack STACK   target a deployed stack instead of the local \`npm start\` store
  --json                          machine-readable output`;

const FLAGS = {
  name: { type: 'string' },
  account: { type: 'string' },
  project: { type: 'string' },
  tier: { type: 'string' },
  'pin-tier': { type: 'boolean' },
  'allow-tiers': { type: 'string' },
  'max-spend-per-day': { type: 'string' },
  timezone: { type: 'string' },
  'pii-mode': { type: 'string' },
  'default-max-tokens': { type: 'string' },
  'requests-per-minute': { type: 'string' },
  'max-concurrent': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Which flag sets each KeyOptions field, so validation errors name what the user typed. */
const FLAG_OF: Record<string, string> = {
  account_id: '--account', name: '--name', project: '--project', tier: '--tier', allowed_tiers: '--allow-tiers',
  max_spend_per_day: '--max-spend-per-day', timezone: '--timezone', pii_mode: '--pii-mode',
  default_max_tokens: '--default-max-tokens', requests_per_minute: '--requests-per-minute',
  max_concurrent_requests: '--max-concurrent',
};

const LIMIT_FLAGS = ['requests-per-minute', 'max-concurrent'];
/** The flags each subcommand takes besides --json (and --region/--stack, handled by resolveCliEnv). */
const FLAGS_OF: Record<string, string[]> = {
  create: Object.keys(FLAGS).filter((f) => f !== 'json'),
  update: LIMIT_FLAGS,
};

export function run(argv: string[]): Promise<number> {
  // Required lazily (tsx's CommonJS hook loads it), as bin/ni.ts loads the commands.
  if (argv[0] === 'byok') return (require('./keys-byok') as typeof import('./keys-byok')).run(argv.slice(1));
  return runCommand({ usage: USAGE, flags: FLAGS, helpSubcommand: true }, argv, async ({ values: flags, positionals }) => {
    const [sub, ...args] = positionals;
    if (!sub || !['create', 'list', 'show', 'update', 'revoke'].includes(sub)) {
      throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand');
    }
    const stray = FLAGS_OF.create.find((f) => flags[f as keyof typeof flags] !== undefined && !FLAGS_OF[sub]?.includes(f));
    if (stray) throw new UsageError(`--${stray} only applies to ${LIMIT_FLAGS.includes(stray) ? 'ni keys create and update' : 'ni keys create'}`);
    const wantsId = sub === 'show' || sub === 'update' || sub === 'revoke';
    if (args.length !== (wantsId ? 1 : 0)) {
      throw new UsageError(wantsId ? `ni keys ${sub} takes one key id` : `unexpected argument '${args[0]}'`);
    }
    // Validated before touching the store.
    const options = sub === 'create' ? createOptions(flags) : undefined;
    const limits = sub === 'update' ? limitsUpdate(flags) : undefined;
    const env = await resolveCliEnv(flags);
    env.apply();
    switch (sub) {
      case 'create': {
        const accountId = options!.account_id ?? DEFAULT_ACCOUNT_ID;
        if (accountId === DEFAULT_ACCOUNT_ID) await ensureDefaultAccount();
        else if (!await getAccount(accountId)) throw new UsageError(`--account: no account ${accountId} (ni accounts list)`);
        const { record, secret } = await createKey(options!);
        const { id, prefix, ...rest } = record;
        if (flags.json) console.log(JSON.stringify({ id, secret, prefix, ...rest }, null, 2));
        else printCreated(record, secret);
        return 0;
      }
      case 'list': {
        const records = await listKeys();
        console.log(flags.json ? JSON.stringify(records.map(listed), null, 2) : table(records));
        return 0;
      }
      case 'show': {
        const record = await getById(args[0]);
        if (!record) return notFound(args[0]);
        console.log(flags.json ? JSON.stringify(listed(record), null, 2) : details(record));
        return 0;
      }
      case 'update': {
        const record = await updateLimits(args[0], limits!);
        if (!record) return notFound(args[0]);
        if (flags.json) console.log(JSON.stringify(listed(record), null, 2));
        else console.log(`Updated ${record.id} (${record.name}): ${limitsLine(record)}. Its requests follow them within ${KEY_CHANGE_BOUND_S} seconds.`);
        return 0;
      }
      default: {
        const before = await getById(args[0]);
        const record = before && await revokeKey(args[0]);
        if (!before || !record) return notFound(args[0]);
        if (before.revoked_at) console.log(`${record.id} was already revoked at ${time(record.revoked_at)}.`);
        else console.log(`Revoked ${record.id} (${record.name}) at ${time(record.revoked_at)}. It stops working within ${KEY_CHANGE_BOUND_S} seconds.`);
        return 0;
      }
    }
  });
}

function createOptions(flags: Record<string, string | boolean | undefined>): KeyOptions {
  const str = (f: string) => flags[f] as string | undefined;
  if (str('name') === undefined) throw new UsageError('--name is required');
  let cap: number | null = null;
  if (str('max-spend-per-day') !== undefined) {
    try {
      cap = parseCad(str('max-spend-per-day')!);
    } catch {
      throw new UsageError(`--max-spend-per-day: expected a CAD amount like 25.00, got '${str('max-spend-per-day')}'`);
    }
  }
  /** A whole-number flag, or null when not given. */
  const count = (flag: string, what: string): number | null => {
    const v = str(flag);
    return v === undefined ? null : wholeNumber(flag, v, what);
  };
  const opts = {
    account_id: str('account'),
    name: str('name'),
    project: str('project') ?? null,
    tier: str('tier'),
    tier_pinned: flags['pin-tier'] === true,
    allowed_tiers: str('allow-tiers')?.split(',').map((t) => t.trim()).filter(Boolean),
    max_spend_per_day: cap,
    timezone: str('timezone'),
    pii_mode: str('pii-mode'),
    default_max_tokens: count('default-max-tokens', 'tokens'),
    ...limitFlags(flags),
  };
  return parseFlags(KeyOptions, opts);
}

function wholeNumber(flag: string, v: string, what: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`--${flag}: expected a whole number of ${what}, got '${v}'`);
  return Number(v);
}

/** The request-limit flags: a number, or `none` (null: no limit); undefined when not given (the default, or unchanged). */
function limitFlags(flags: Record<string, string | boolean | undefined>) {
  const limit = (flag: string) => {
    const v = flags[flag] as string | undefined;
    if (v === undefined) return undefined;
    return v === 'none' ? null : wholeNumber(flag, v, 'requests (or none)');
  };
  return { requests_per_minute: limit('requests-per-minute'), max_concurrent_requests: limit('max-concurrent') };
}

function limitsUpdate(flags: Record<string, string | boolean | undefined>): LimitsUpdate {
  const update = limitFlags(flags);
  if (update.requests_per_minute === undefined && update.max_concurrent_requests === undefined) {
    throw new UsageError('ni keys update: give --requests-per-minute and/or --max-concurrent (a number, or none)');
  }
  return parseFlags(LimitsUpdate, update);
}

/** Validates what the flags gave; an error names the flag the user typed. */
function parseFlags<S extends z.ZodType>(schema: S, opts: unknown): z.output<S> {
  const parsed = schema.safeParse(opts);
  if (!parsed.success) {
    throw new UsageError(parsed.error.issues.map((i) => `${FLAG_OF[String(i.path[0])] ?? i.path.join('.')}: ${i.message}`).join('\n'));
  }
  return parsed.data;
}

/** A record as listed: its BYOK credentials by provider only (`ni keys byok show` prints what may be shown of them). */
const listed = (r: KeyRecord) => ({ ...r, byok: r.byok && Object.keys(r.byok).length ? Object.keys(r.byok) : null });

function notFound(id: string): number {
  console.error(`no key with id ${id}`);
  return 1;
}

const time = (iso: string | null) => (iso ? `${iso.slice(0, 19).replace('T', ' ')}Z` : '-');
const cad = (micro: number | null) => (micro === null ? 'unlimited' : formatCad(micro).replace(/(\.\d\d\d*?)0+$/, '$1'));
const tierLabel = (r: KeyRecord) => `${r.tier}${r.tier_pinned ? ' (pinned)' : ''}`;

function printCreated(r: KeyRecord, secret: string): void {
  console.log(`Created API key ${r.id} (${r.name}).

  ${secret}

This secret is shown ONLY NOW: copy it somewhere safe. Northern Inference keeps only its SHA-256 hash and
cannot show it again (if it is lost, revoke the key and create another).

${details(r)}`);
}

const limitText = (n: number | null) => (n === null ? 'unlimited' : String(n));
const limitsLine = (r: KeyRecord) => `${limitText(r.requests_per_minute)} requests/min, ${limitText(r.max_concurrent_requests)} concurrent`;

function details(r: KeyRecord): string {
  const rows: [string, string][] = [
    ['id', r.id],
    ['account', r.account_id],
    ['name', r.name],
    ['project', r.project ?? '-'],
    ['prefix', r.prefix],
    ['tier', tierLabel(r)],
    ['allowed tiers', r.allowed_tiers.join(', ')],
    ['cap per day', r.max_spend_per_day === null ? 'unlimited' : `${cad(r.max_spend_per_day)} CAD`],
    ['timezone', r.timezone],
    ['PII mode', r.pii_mode],
    ['max tokens', r.default_max_tokens === null ? "model's default" : String(r.default_max_tokens)],
    ['requests/min', limitText(r.requests_per_minute)],
    ['concurrent', limitText(r.max_concurrent_requests)],
    ['own credentials', r.byok && Object.keys(r.byok).length ? `${Object.keys(r.byok).join(', ')} (ni keys byok show ${r.id})` : '-'],
    ['created', time(r.created_at)],
    ['revoked', time(r.revoked_at)],
  ];
  return rows.map(([k, v]) => `  ${k.padEnd(16)}${v}`).join('\n');
}

function table(records: KeyRecord[]): string {
  if (!records.length) return 'No keys yet: create one with ni keys create --name NAME';
  const head = ['ID', 'NAME', 'PROJECT', 'PREFIX', 'TIER', 'CAP CAD/DAY', 'TIMEZONE', 'CREATED', 'REVOKED'];
  const rows = records.map((r) => [
    r.id, r.name, r.project ?? '-', r.prefix, tierLabel(r), cad(r.max_spend_per_day), r.timezone, time(r.created_at), time(r.revoked_at),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  return [head, ...rows].map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
