import type { KeyRecord } from '../../lambdas/core/keys';
import { formatCad } from '../../lambdas/core/pricing';
import { isDay, shiftDay, spendDay } from '../../lambdas/core/spend-day';
import { getById, listKeys } from '../../lambdas/store/keys';
import { type DayUsage, type Granularity, queryUsage, type RequestUsage } from '../../lambdas/store/usage';
import { resolveCliEnv, runCommand, UsageError } from '../cli-env';

export const USAGE = `usage: ni usage [--key ID] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--granularity day|request]
                [--limit N] [--json] [--region REGION --stack STACK]

  Usage and cost per spend day (per model) or per request. Days are each key's spend days, in its time zone.
    --key          one key (default: every key)
    --from, --to   inclusive range of days (default: the last 7 days up to the key's today)
    --granularity  day (default) or request
    --limit        at most N rows per key (default: all)
    --json         machine-readable output
  --region REGION --stack STACK   target a deployed stack instead of the local \`npm start\` store`;

const FLAGS = {
  key: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  granularity: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const DEFAULT_RANGE_DAYS = 7;
const PAGE = 1000;

interface KeyUsage {
  key_id: string;
  name: string;
  from: string;
  to: string;
  data: (DayUsage | RequestUsage)[];
}

export function run(argv: string[]): Promise<number> {
  return runCommand({ usage: USAGE, flags: FLAGS }, argv, async ({ values: flags, positionals }) => {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const granularity = (flags.granularity ?? 'day') as Granularity;
    if (granularity !== 'day' && granularity !== 'request') throw new UsageError('--granularity must be day or request');
    for (const f of ['from', 'to'] as const) {
      if (flags[f] !== undefined && !isDay(flags[f])) throw new UsageError(`--${f}: expected a date YYYY-MM-DD, got '${flags[f]}'`);
    }
    if (flags.from && flags.to && flags.from > flags.to) throw new UsageError('--from is after --to');
    const limit = flags.limit === undefined ? Infinity : Number(flags.limit);
    if (!(Number.isInteger(limit) && limit > 0) && limit !== Infinity) throw new UsageError('--limit must be a positive integer');

    const env = await resolveCliEnv(flags);
    env.apply();
    let keys: KeyRecord[];
    if (flags.key) {
      const record = await getById(flags.key);
      if (!record) {
        console.error(`no key with id ${flags.key}`);
        return 1;
      }
      keys = [record];
    } else {
      keys = await listKeys();
    }

    const now = new Date();
    const results: KeyUsage[] = [];
    for (const k of keys) {
      const to = flags.to ?? spendDay(k.timezone, now).day;
      const from = flags.from ?? shiftDay(to, 1 - DEFAULT_RANGE_DAYS);
      const data: KeyUsage['data'] = [];
      let cursor: string | undefined;
      do {
        const page = await queryUsage(k.id, { from, to, granularity, limit: Math.min(PAGE, limit - data.length), cursor });
        data.push(...page.data);
        cursor = page.next_cursor ?? undefined;
      } while (cursor && data.length < limit);
      results.push({ key_id: k.id, name: k.name, from, to, data });
    }

    if (flags.json) console.log(JSON.stringify({ granularity, keys: results }, null, 2));
    else console.log(granularity === 'day' ? dayTable(results) : requestTable(results));
    return 0;
  });
}

const tokens = (u: { input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number }) =>
  [u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens].map(String);

function render(header: string[], rows: string[][], rightFrom: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i >= rightFrom ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function dayTable(results: KeyUsage[]): string {
  const rows: string[][] = [];
  let total = 0;
  for (const k of results) {
    for (const d of k.data as DayUsage[]) {
      for (const m of d.models) {
        rows.push([d.day, k.key_id, m.model, String(m.requests), ...tokens(m), formatCad(m.cost_micro_cad)]);
      }
      if (d.reserved_micro_cad > 0) {
        rows.push([d.day, k.key_id, '(in flight)', '', '', '', '', '', `${formatCad(d.reserved_micro_cad)} reserved`]);
      }
      total += d.cost_micro_cad;
    }
  }
  if (rows.length === 0) return `No usage ${rangeText(results)}.`;
  return `${render(['DAY', 'KEY', 'MODEL', 'REQUESTS', 'INPUT', 'OUTPUT', 'CACHE_READ', 'CACHE_WRITE', 'COST_CAD'], rows, 3)}\n\nTotal: ${formatCad(total)} CAD ${rangeText(results)}`;
}

function requestTable(results: KeyUsage[]): string {
  const rows: string[][] = [];
  for (const k of results) {
    for (const r of k.data as RequestUsage[]) {
      // What the customer's own provider charges them (BYOK) is theirs, not billed here: shown apart.
      rows.push([r.ended_at, k.key_id, r.model, r.status, r.credential ?? 'operator', ...tokens(r), formatCad(r.cost_micro_cad),
        r.provider_cost_estimate_micro_cad === null ? '-' : formatCad(r.provider_cost_estimate_micro_cad),
        r.ttft_ms === null ? '-' : String(r.ttft_ms), String(r.duration_ms), r.request_id]);
    }
  }
  if (rows.length === 0) return `No requests ${rangeText(results)}.`;
  return render(['ENDED_AT', 'KEY', 'MODEL', 'STATUS', 'CREDENTIAL', 'INPUT', 'OUTPUT', 'CACHE_READ', 'CACHE_WRITE', 'COST_CAD', 'PROVIDER_COST_CAD', 'TTFT_MS', 'DURATION_MS', 'REQUEST_ID'], rows, 5);
}

function rangeText(results: KeyUsage[]): string {
  if (results.length === 0) return '(no keys)';
  const ranges = new Set(results.map((k) => `${k.from} .. ${k.to}`));
  return ranges.size === 1 ? `from ${[...ranges][0]}` : '(each key in its own time zone)';
}
