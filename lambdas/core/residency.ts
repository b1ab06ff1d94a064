import type { CustodyEvent } from './custody';
import type { ChainReport } from './ledger';
import { PII_TYPES } from './pii';

/**
 * The residency report of one key for one calendar month (UTC), for privacy impact assessments (Québec's Law 25,
 * PIPEDA): its requests by jurisdiction and privacy tier, the personal data substituted by type, and its custody
 * chain's head with the verification status. Built from the key's ledger entries, nothing else.
 */
export interface ResidencyReport {
  object: 'residency.report';
  account_id: string;
  key: { id: string; name: string; prefix: string };
  month: string;
  generated_at: string;
  requests: number;
  by_jurisdiction_and_tier: { jurisdiction: string; tier: string; requests: number; errors: number }[];
  pii_substitutions: Record<string, number>;
  chain: {
    verified: boolean;
    entries: number;
    head: { seq: number; hash: string } | null;
    last_checkpoint: { seq: number; time: string } | null;
    unsigned_tail: number;
    problems: string[];
  };
}

export const isMonth = (s: string) => /^\d{4}-(0[1-9]|1[0-2])$/.test(s);

export function residencyReport(input: {
  accountId: string;
  key: { id: string; name: string; prefix: string };
  month: string;
  events: CustodyEvent[];
  chain: ChainReport;
  now: Date;
}): ResidencyReport {
  const events = input.events.filter((e) => e.started_at.startsWith(input.month));
  const groups = new Map<string, { jurisdiction: string; tier: string; requests: number; errors: number }>();
  const pii: Record<string, number> = Object.fromEntries(PII_TYPES.map((t) => [t, 0]));
  for (const e of events) {
    const jurisdiction = e.jurisdiction ?? 'NONE'; // refused before any route was chosen: no data left the gateway
    const k = `${jurisdiction}|${e.privacy_tier}`;
    const g = groups.get(k) ?? { jurisdiction, tier: e.privacy_tier, requests: 0, errors: 0 };
    g.requests += 1;
    if (e.status !== 'ok') g.errors += 1;
    groups.set(k, g);
    for (const [type, n] of Object.entries(e.pii_substitutions)) pii[type] = (pii[type] ?? 0) + (n ?? 0);
  }
  const c = input.chain;
  return {
    object: 'residency.report',
    account_id: input.accountId,
    key: input.key,
    month: input.month,
    generated_at: input.now.toISOString(),
    requests: events.length,
    by_jurisdiction_and_tier: [...groups.values()].sort((a, b) => a.jurisdiction.localeCompare(b.jurisdiction) || a.tier.localeCompare(b.tier)),
    pii_substitutions: pii,
    chain: {
      verified: c.ok, entries: c.entries, head: c.head, last_checkpoint: c.last_checkpoint, unsigned_tail: c.unsigned_tail,
      problems: c.problems.map((p) => `seq ${p.seq}: ${p.problem}`),
    },
  };
}

const csvCell = (v: string | number | boolean) => {
  // A text cell a spreadsheet would run as a formula (a key named "=HYPERLINK(…)") is kept as text.
  const s = typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${v}` : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The report as CSV: one section per table, `section,field…` rows a spreadsheet reads. */
export function residencyCsv(r: ResidencyReport): string {
  const rows: (string | number | boolean)[][] = [
    ['section', 'name', 'value', 'extra'],
    ['report', 'account_id', r.account_id, ''],
    ['report', 'key_id', r.key.id, r.key.name],
    ['report', 'month', r.month, ''],
    ['report', 'generated_at', r.generated_at, ''],
    ['report', 'requests', r.requests, ''],
    ...r.by_jurisdiction_and_tier.map((g) => ['jurisdiction_tier', `${g.jurisdiction}/${g.tier}`, g.requests, `errors=${g.errors}`]),
    ...Object.entries(r.pii_substitutions).map(([t, n]) => ['pii_substitutions', t, n, '']),
    ['chain', 'verified', r.chain.verified, r.chain.problems.join('; ')],
    ['chain', 'entries', r.chain.entries, ''],
    ['chain', 'head_seq', r.chain.head?.seq ?? '', r.chain.head?.hash ?? ''],
    ['chain', 'last_checkpoint_seq', r.chain.last_checkpoint?.seq ?? '', r.chain.last_checkpoint?.time ?? ''],
  ];
  return `${rows.map((row) => row.map(csvCell).join(',')).join('\r\n')}\r\n`;
}
