import { AUTHORIZER_CACHE_TTL_SECONDS, DEFAULT_KEY_CACHE_TTL_MS, KeyOptions, type KeyRecord } from '../../lambdas/core/keys';
import { formatCad, parseCad } from '../../lambdas/core/pricing';
import { DEFAULT_TIMEZONE, PiiMode } from '../../lambdas/core/principal';
import { DEFAULT_TIER, Tier } from '../../lambdas/core/tiers';
import { createKey, getById, listKeys, revokeKey } from '../../lambdas/store/keys';
import { resolveCliEnv, runCommand, UsageError } from '../cli-env';

const REVOCATION_BOUND_S = AUTHORIZER_CACHE_TTL_SECONDS + Math.ceil(DEFAULT_KEY_CACHE_TTL_MS / 1000);

export const USAGE = `usage: ni keys <create|list|show|revoke|byok> [options]

  ni keys create --name NAME [--project P] [--tier TIER] [--pin-tier] [--allow-tiers T1,T2]
                 [--max-spend-per-day CAD] [--timezone ZONE] [--pii-mode MODE]
                 [--default-max-tokens N] [--requests-per-minute N] [--max-concurrent N] [--json]
      Creates a key and prints its secret. The secret is shown this once and never stored.
        --tier               default privacy tier: ${Tier.options.join(' | ')} (default ${DEFAULT_TIER})
        --pin-tier           clients cannot choose another tier
        --allow-tiers        tiers a client may ask for, comma-separated; must include --tier
                             (default: --tier and every stricter tier)
        --max-spend-per-day  daily cap in CAD, e.g. 25.00 (default: no cap)
        --timezone           IANA zone the spend day follows (default ${DEFAULT_TIMEZONE})
        --pii-mode           ${PiiMode.options.join(' | ')} (default substitute)
        --default-max-tokens output tokens asked for when a request names no max_tokens
                             (default: each model's default_max_tokens; never above its limit)
        --requests-per-minute chat completions per clock minute (default: no limit)
        --max-concurrent     chat completions in progress at once (default: no limit)
  ni keys list [--json]        every key (never the secrets)
  ni keys show ID [--json]     one key
  ni keys revoke ID            revokes a key; it stops working within ${REVOCATION_BOUND_S} seconds
  ni keys byok set|show|clear ID ...   the key's own provider credentials (ni keys byok --help)

  --region REGION --stack STACK   target a deployed stack instead of the local \`npm start\` store
  --json                          machine-readable output`;

const FLAGS = {
  name: { type: 'string' },
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
  name: '--name', project: '--project', tier: '--tier', allowed_tiers: '--allow-tiers',
  max_spend_per_day: '--max-spend-per-day', timezone: '--timezone', pii_mode: '--pii-mode',
  default_max_tokens: '--default-max-tokens', requests_per_minute: '--requests-per-minute',
  max_concurrent_requests: '--max-concurrent',
};

const CREATE_ONLY = Object.keys(FLAGS).filter((f) => f !== 'json');

export function run(argv: string[]): Promise<number> {
  // Required lazily (tsx's CommonJS hook loads it), as bin/ni.ts loads the commands.
  if (argv[0] === 'byok') return (require('./keys-byok') as typeof import('./keys-byok')).run(argv.slice(1));
  return runCommand({ usage: USAGE, flags: FLAGS, helpSubcommand: true }, argv, async ({ values: flags, positionals }) => {
    const [sub, ...args] = positionals;
    if (!sub || !['create', 'list', 'show', 'revoke'].includes(sub)) {
      throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand');
    }
    if (sub !== 'create') {
      const stray = CREATE_ONLY.find((f) => flags[f as keyof typeof flags] !== undefined);
      if (stray) throw new UsageError(`--${stray} only applies to ni keys create`);
    }
    const wantsId = sub === 'show' || sub === 'revoke';
    if (args.length !== (wantsId ? 1 : 0)) {
      throw new UsageError(wantsId ? `ni keys ${sub} takes one key id` : `unexpected argument '${args[0]}'`);
    }
    const options = sub === 'create' ? createOptions(flags) : undefined; // validate before touching the store
    const env = await resolveCliEnv(flags);
    env.apply();
    switch (sub) {
      case 'create': {
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
      default: {
        const before = await getById(args[0]);
        const record = before && await revokeKey(args[0]);
        if (!before || !record) return notFound(args[0]);
        if (before.revoked_at) console.log(`${record.id} was already revoked at ${time(record.revoked_at)}.`);
        else console.log(`Revoked ${record.id} (${record.name}) at ${time(record.revoked_at)}. It stops working within ${REVOCATION_BOUND_S} seconds.`);
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
    if (v !== undefined && !/^\d+$/.test(v)) throw new UsageError(`--${flag}: expected a whole number of ${what}, got '${v}'`);
    return v === undefined ? null : Number(v);
  };
  const opts = {
    name: str('name'),
    project: str('project') ?? null,
    tier: str('tier'),
    tier_pinned: flags['pin-tier'] === true,
    allowed_tiers: str('allow-tiers')?.split(',').map((t) => t.trim()).filter(Boolean),
    max_spend_per_day: cap,
    timezone: str('timezone'),
    pii_mode: str('pii-mode'),
    default_max_tokens: count('default-max-tokens', 'tokens'),
    requests_per_minute: count('requests-per-minute', 'requests'),
    max_concurrent_requests: count('max-concurrent', 'requests'),
  };
  const parsed = KeyOptions.safeParse(opts);
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

function details(r: KeyRecord): string {
  const rows: [string, string][] = [
    ['id', r.id],
    ['name', r.name],
    ['project', r.project ?? '-'],
    ['prefix', r.prefix],
    ['tier', tierLabel(r)],
    ['allowed tiers', r.allowed_tiers.join(', ')],
    ['cap per day', r.max_spend_per_day === null ? 'unlimited' : `${cad(r.max_spend_per_day)} CAD`],
    ['timezone', r.timezone],
    ['PII mode', r.pii_mode],
    ['max tokens', r.default_max_tokens === null ? "model's default" : String(r.default_max_tokens)],
    ['requests/min', r.requests_per_minute === null ? 'unlimited' : String(r.requests_per_minute)],
    ['concurrent', r.max_concurrent_requests === null ? 'unlimited' : String(r.max_concurrent_requests)],
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
