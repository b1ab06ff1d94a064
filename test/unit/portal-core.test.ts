import { catalog } from '../../lambdas/catalog';
import type { CustodyEvent } from '../../lambdas/core/custody';
import type { ChainReport } from '../../lambdas/core/ledger';
import { keyOptionsFrom, PortalKeyCreate, portalModels } from '../../lambdas/core/portal';
import { residencyCsv, residencyReport } from '../../lambdas/core/residency';

const event = (over: Partial<CustodyEvent>): CustodyEvent => ({
  schema_version: 1, request_id: 'r', key_id: 'key_1', started_at: '2026-11-30T23:59:00.000Z', first_byte_at: null, ended_at: '2026-12-01T00:00:01.000Z',
  model: 'm', privacy_tier: 'managed_canadian_cloud', jurisdiction: 'CA', route: null, custody_path: [], usage: { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
  cost_micro_cad: 1, status: 'ok', http_status: 200, finish_reason: 'stop', error_code: null, pii_substitutions: {}, request_sha256: null, response_sha256: '0'.repeat(64), ...over,
});

const chain: ChainReport = {
  key_id: 'key_1', ok: false, entries: 4, head: { seq: 4, hash: 'h' }, checkpoints: 1, last_checkpoint: { seq: 1, time: 't' }, unsigned_tail: 3,
  in_flight: 0, pending_checkpoints: 0, problems: [{ key_id: 'key_1', seq: 3, problem: 'entry hash mismatch' }],
};

describe('residency report', () => {
  const report = residencyReport({
    accountId: 'acct_a', key: { id: 'key_1', name: 'ci, "main"', prefix: 'ni_live_Ab…' }, month: '2026-12', chain, now: new Date('2026-12-04T00:00:00Z'),
    events: [
      event({ started_at: '2026-11-30T23:59:00.000Z' }), // its month is the one it started in
      event({ started_at: '2026-12-01T00:00:00.000Z', pii_substitutions: { EMAIL: 2, PERSON: 1 } }),
      event({ started_at: '2026-12-02T00:00:00.000Z', privacy_tier: 'global', jurisdiction: 'US', status: 'error', pii_substitutions: { EMAIL: 1 } }),
      event({ started_at: '2026-12-03T00:00:00.000Z', jurisdiction: null, status: 'error' }),
    ],
  });

  test('counts the month\'s requests by jurisdiction and tier, and substitutions by type', () => {
    expect(report.requests).toBe(3);
    expect(report.by_jurisdiction_and_tier).toEqual([
      { jurisdiction: 'CA', tier: 'managed_canadian_cloud', requests: 1, errors: 0 },
      { jurisdiction: 'NONE', tier: 'managed_canadian_cloud', requests: 1, errors: 1 },
      { jurisdiction: 'US', tier: 'global', requests: 1, errors: 1 },
    ]);
    expect(report.pii_substitutions).toMatchObject({ EMAIL: 3, PERSON: 1, PHONE: 0 });
    expect(report.chain).toMatchObject({ verified: false, head: { seq: 4 }, problems: ['seq 3: entry hash mismatch'] });
  });

  test('CSV: fields with commas or quotes are quoted, lines end with CRLF', () => {
    const csv = residencyCsv(report);
    expect(csv).toContain('report,key_id,key_1,"ci, ""main"""\r\n');
    expect(csv).toContain('chain,verified,false,seq 3: entry hash mismatch\r\n');
    expect(csv.endsWith('\r\n')).toBe(true);
    const formula = residencyCsv({ ...report, key: { ...report.key, name: '=HYPERLINK("http://x")' } });
    expect(formula).toContain('report,key_id,key_1,"\'=HYPERLINK(""http://x"")"\r\n');
  });
});

describe('portal views', () => {
  test('each model says where each of its tiers processes a request: the first route the tier allows', () => {
    const gpt4o = portalModels(catalog()).find((m) => m.model_id === 'openai/gpt-4o')!;
    expect(gpt4o.placements).toEqual([
      { tier: 'managed_canadian_cloud', provider: 'azure_openai', region: 'canadaeast', jurisdiction: 'CA' },
      { tier: 'global', provider: 'azure_openai', region: 'canadaeast', jurisdiction: 'CA' },
    ]);
    const sonnet = portalModels(catalog()).find((m) => m.model_id === 'anthropic/claude-sonnet-4.5')!;
    expect(sonnet.placements.map((p) => [p.tier, p.jurisdiction])).toEqual([['global', 'US']]);
  });

  test('a key from the form belongs to the signed-in user\'s account, its cap in micro-CAD; the form cannot name an account', () => {
    const form = PortalKeyCreate.parse({ name: ' laptop ', project: '', tier: 'global', max_spend_per_day_cad: '25.5', timezone: 'america/vancouver' });
    expect(keyOptionsFrom('acct_a', form)).toMatchObject({ account_id: 'acct_a', name: 'laptop', project: null, max_spend_per_day: 25_500_000, timezone: 'America/Vancouver' });
    expect(PortalKeyCreate.safeParse({ name: 'x', tier: 'global', account_id: 'acct_b' }).success).toBe(false);
    expect(PortalKeyCreate.safeParse({ name: 'x', tier: 'global', max_spend_per_day_cad: '-1' }).success).toBe(false);
  });
});
