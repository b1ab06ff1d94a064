import {
  base62, displayPrefix, generateKeyId, generateSecret, hashSecret, isWellFormedSecret, KEY_PREFIX, KEY_SECRET_BYTES,
  KeyOptions, KeyRecord, keyToPrincipal, newKeyRecord, parseBearer, stageWildcardArn,
} from '../../lambdas/core/keys';
import { fromAuthorizerContext, toAuthorizerContext } from '../../lambdas/core/principal';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const decode62 = (s: string) => [...s].reduce((n, c) => n * 62n + BigInt(ALPHABET.indexOf(c)), 0n);
const meta = { id: 'key_test1', prefix: 'ni_live_AbCd…', now: new Date('2025-03-01T12:00:00.000Z') };

describe('secrets', () => {
  it('are ni_live_ + fixed-width base62 of 32 random bytes', () => {
    const secrets = Array.from({ length: 200 }, generateSecret);
    for (const s of secrets) {
      expect(s).toMatch(/^ni_live_[0-9A-Za-z]{43}$/);
      expect(decode62(s.slice(KEY_PREFIX.length)) < 2n ** 256n).toBe(true);
      expect(isWellFormedSecret(s)).toBe(true);
    }
    expect(KEY_SECRET_BYTES).toBeGreaterThanOrEqual(32);
    expect(new Set(secrets).size).toBe(secrets.length);
    // 200 × 43 characters of uniform base62: every symbol shows up.
    expect(new Set(secrets.flatMap((s) => [...s.slice(KEY_PREFIX.length)])).size).toBe(62);
  });

  it('base62 encodes bytes exactly, left-padded to a fixed width', () => {
    const bytes = Uint8Array.from([0, 0, 1, 255, 7, 42, 9, 200]);
    const out = base62(bytes);
    expect(out).toHaveLength(Math.ceil((8 * 8) / Math.log2(62)));
    expect(decode62(out)).toBe(BigInt(`0x${Buffer.from(bytes).toString('hex')}`));
    expect(base62(new Uint8Array(32))).toBe('0'.repeat(43));
    expect(decode62(base62(new Uint8Array(32).fill(255)))).toBe(2n ** 256n - 1n);
  });

  it('hash to SHA-256 hex and show only a short prefix', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const s = generateSecret();
    expect(hashSecret(s)).toMatch(/^[0-9a-f]{64}$/);
    expect(displayPrefix(s)).toBe(`${s.slice(0, 12)}…`);
    expect(generateKeyId()).toMatch(/^key_[0-9A-Za-z]{17}$/);
  });

  it('are recognised only in a Bearer header of the right shape', () => {
    const s = generateSecret();
    expect(parseBearer(`Bearer ${s}`)).toBe(s);
    expect(parseBearer(`  bearer   ${s}  `)).toBe(s);
    for (const bad of [undefined, '', s, `Basic ${s}`, `Bearer ${s}x!`, `Bearer ni_live_short`, `Bearer ${s} extra`,
      `Bearer sk-${s.slice(8)}`, `Bearer ${s}${'a'.repeat(200)}`]) {
      expect(parseBearer(bad)).toBeUndefined();
    }
  });
});

describe('key records', () => {
  it('default to the default account, managed Canadian cloud, that tier and the stricter ones, Toronto, substitute, no cap, 300 requests a minute and 10 at once', () => {
    const r = newKeyRecord({ name: 'ci' }, meta);
    expect(r).toEqual({
      id: 'key_test1', account_id: 'acct_default', name: 'ci', project: null, prefix: 'ni_live_AbCd…', created_at: '2025-03-01T12:00:00.000Z',
      revoked_at: null, tier: 'managed_canadian_cloud', tier_pinned: false,
      allowed_tiers: ['canadian_sovereign', 'managed_canadian_cloud'], max_spend_per_day: null,
      timezone: 'America/Toronto', pii_mode: 'substitute', default_max_tokens: null, requests_per_minute: 300, max_concurrent_requests: 10, byok: null,
    });
  });

  it('keep an explicit null limit as no limit; records from before the limits read as the defaults', () => {
    const r = newKeyRecord({ name: 'ci', requests_per_minute: null, max_concurrent_requests: 5 }, meta);
    expect(r).toMatchObject({ requests_per_minute: null, max_concurrent_requests: 5 });
    const { requests_per_minute: _r, max_concurrent_requests: _c, ...older } = r;
    expect(KeyRecord.parse(older)).toMatchObject({ requests_per_minute: 300, max_concurrent_requests: 10 });
    expect(KeyRecord.parse(r)).toMatchObject({ requests_per_minute: null, max_concurrent_requests: 5 });
  });

  it('belong to the account given; records written before accounts read as the default account\'s', () => {
    const r = newKeyRecord({ name: 'ci', account_id: 'acct_x1' }, meta);
    expect(r.account_id).toBe('acct_x1');
    const { account_id: _, ...older } = r;
    expect(KeyRecord.parse(older).account_id).toBe('acct_default');
    expect(KeyOptions.safeParse({ name: 'a', account_id: 'someone' }).success).toBe(false);
  });

  it('derive the allowed tiers from the default tier', () => {
    expect(newKeyRecord({ name: 'a', tier: 'canadian_sovereign' }, meta).allowed_tiers).toEqual(['canadian_sovereign']);
    expect(newKeyRecord({ name: 'a', tier: 'global' }, meta).allowed_tiers)
      .toEqual(['canadian_sovereign', 'managed_canadian_cloud', 'global']);
    expect(newKeyRecord({ name: 'a', allowed_tiers: ['global', 'managed_canadian_cloud', 'global'] }, meta).allowed_tiers)
      .toEqual(['managed_canadian_cloud', 'global']);
  });

  it('reject allowed tiers without the default tier, unknown tiers and bad caps', () => {
    const issues = (o: unknown) => { const r = KeyOptions.safeParse(o); return r.success ? [] : r.error.issues.map((i) => i.path.join('.')); };
    expect(issues({ name: 'a', tier: 'global', allowed_tiers: ['canadian_sovereign'] })).toEqual(['allowed_tiers']);
    expect(issues({ name: 'a', tier: 'offshore' })).toEqual(['tier']);
    expect(issues({ name: 'a', max_spend_per_day: -1 })).toEqual(['max_spend_per_day']);
    expect(issues({ name: 'a', max_spend_per_day: 1.5 })).toEqual(['max_spend_per_day']);
    expect(issues({ name: '  ' })).toEqual(['name']);
    expect(issues({ name: 'a', pii_mode: 'redact' })).toEqual(['pii_mode']);
    expect(issues({ name: 'a', default_max_tokens: 0 })).toEqual(['default_max_tokens']);
  });

  it('accept IANA time zones only, in canonical spelling', () => {
    const tz = (timezone: string) => { const r = KeyOptions.safeParse({ name: 'a', timezone }); return r.success ? r.data.timezone : undefined; };
    expect(tz('America/Vancouver')).toBe('America/Vancouver');
    expect(tz('america/toronto')).toBe('America/Toronto');
    expect(tz('UTC')).toBe('UTC');
    for (const bad of ['Mars/Olympus_Mons', '+05:00', 'EST5EDT;rm', '', 'America/']) expect(tz(bad)).toBeUndefined();
  });

  it('map to a principal that survives the authorizer context, as given and as API Gateway strings', () => {
    const r = newKeyRecord({ name: 'a', tier: 'global', tier_pinned: true, max_spend_per_day: 25_000_000,
      timezone: 'America/Vancouver', pii_mode: 'block' }, meta);
    const p = keyToPrincipal(r);
    expect(p).toEqual({
      keyId: 'key_test1', tier: 'global', tierPinned: true,
      allowedTiers: ['canadian_sovereign', 'managed_canadian_cloud', 'global'], maxSpendPerDay: 25_000_000,
      timezone: 'America/Vancouver', piiMode: 'block', requestsPerMinute: 300, maxConcurrent: 10,
    });
    const ctx = toAuthorizerContext(p);
    expect(fromAuthorizerContext(ctx)).toEqual(p);
    expect(fromAuthorizerContext(Object.fromEntries(Object.entries(ctx).map(([k, v]) => [k, String(v)])))).toEqual(p);
    const budgeted = keyToPrincipal(newKeyRecord({ name: 'c', default_max_tokens: 2048 }, meta));
    expect(budgeted.defaultMaxTokens).toBe(2048);
    expect(fromAuthorizerContext(Object.fromEntries(Object.entries(toAuthorizerContext(budgeted)).map(([k, v]) => [k, String(v)]))))
      .toEqual(budgeted);
    const uncapped = keyToPrincipal(newKeyRecord({ name: 'b' }, meta));
    expect(fromAuthorizerContext(Object.fromEntries(Object.entries(toAuthorizerContext(uncapped)).map(([k, v]) => [k, String(v)]))))
      .toEqual(uncapped);
  });

  it('carry request limits through the authorizer context: none stays none, and a context without them means the defaults', () => {
    const strings = (ctx: Record<string, unknown>) => Object.fromEntries(Object.entries(ctx).map(([k, v]) => [k, String(v)]));
    const unlimited = keyToPrincipal(newKeyRecord({ name: 'u', requests_per_minute: null, max_concurrent_requests: null }, meta));
    const limited = keyToPrincipal(newKeyRecord({ name: 'l', requests_per_minute: 42, max_concurrent_requests: null }, meta));
    for (const p of [unlimited, limited]) {
      expect(fromAuthorizerContext(toAuthorizerContext(p))).toEqual(p);
      expect(fromAuthorizerContext(strings(toAuthorizerContext(p)))).toEqual(p);
    }
    // The context of an authorizer deployed before the limits existed has neither field: the key's record
    // then read as the defaults, so the request does too.
    const { requestsPerMinute: _r, maxConcurrent: _c, ...older } = toAuthorizerContext(unlimited);
    expect(fromAuthorizerContext(strings(older))).toMatchObject({ requestsPerMinute: 300, maxConcurrent: 10 });
    // An authorizer that wrote -1 for none meant none.
    expect(fromAuthorizerContext({ ...strings(older), requestsPerMinute: '-1', maxConcurrent: '-1' })).toMatchObject({ requestsPerMinute: null, maxConcurrent: null });
  });
});

describe('stageWildcardArn', () => {
  it('allows every route of the invoked stage', () => {
    expect(stageWildcardArn('arn:aws:execute-api:ca-central-1:123456789012:abc123/prod/POST/v1/chat/completions'))
      .toBe('arn:aws:execute-api:ca-central-1:123456789012:abc123/prod/*/*');
    expect(stageWildcardArn('arn:aws:execute-api:ca-central-1:123456789012:abc123/v1/GET/api/usage'))
      .toBe('arn:aws:execute-api:ca-central-1:123456789012:abc123/v1/*/*');
  });
});
