import { createHash, randomBytes } from 'node:crypto';
import * as z from 'zod';
import { AccountId, DEFAULT_ACCOUNT_ID } from './accounts';
import { ByokEntries, type ByokCredentials } from './byok';
import { DEFAULT_TIMEZONE, defaultAllowedTiers, PiiMode, Principal } from './principal';
import { DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_REQUESTS_PER_MINUTE } from './rate-limits';
import { DEFAULT_TIER, strictness, Tier } from './tiers';

/**
 * API keys. A secret is `ni_live_` + base62 of KEY_SECRET_BYTES random bytes; it is shown once at creation and
 * never stored: the store keeps its SHA-256 (the lookup key) and a short display prefix.
 *
 * Revocation bound: a revoked key stops working within AUTHORIZER_CACHE_TTL_SECONDS (API Gateway's cache of
 * the authorizer result) + NI_KEY_CACHE_TTL_MS (the authorizer Lambda's in-memory cache, DEFAULT_KEY_CACHE_TTL_MS
 * unless set) — 30 s + 5 s by default. Store reads are strongly consistent, so they add nothing.
 */
export const KEY_PREFIX = 'ni_live_';
export const KEY_SECRET_BYTES = 32;

/** API Gateway's authorizer result cache TTL (the CDK API construct uses it). Short: it bounds revocation. */
export const AUTHORIZER_CACHE_TTL_SECONDS = 30;
/** Default TTL of the authorizer Lambda's in-memory key cache (override with NI_KEY_CACHE_TTL_MS). */
export const DEFAULT_KEY_CACHE_TTL_MS = 5_000;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Fixed-width base62 (left-padded with '0'), so every secret of the same byte length has the same length. */
export function base62(bytes: Uint8Array): string {
  const width = Math.ceil((bytes.length * 8) / Math.log2(62));
  let n = bytes.length ? BigInt(`0x${Buffer.from(bytes).toString('hex')}`) : 0n;
  let out = '';
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(width, '0');
}

const SECRET_BODY_LENGTH = base62(new Uint8Array(KEY_SECRET_BYTES)).length; // 43
// Upper bound only keeps absurd headers from being hashed; longer (stronger) keys may be registered.
const SECRET_RE = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${SECRET_BODY_LENGTH},128}$`);

export const generateSecret = (): string => KEY_PREFIX + base62(randomBytes(KEY_SECRET_BYTES));
export const isWellFormedSecret = (s: string): boolean => SECRET_RE.test(s);
/** SHA-256 hex of the secret: the only form in which a key is stored. */
export const hashSecret = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');
/** Enough to recognise a key in a list (24 bits of the body), never enough to use it. */
export const displayPrefix = (secret: string): string => `${secret.slice(0, KEY_PREFIX.length + 4)}…`;
export const generateKeyId = (): string => `key_${base62(randomBytes(12))}`;

export const KeyId = z.string().regex(/^key_[0-9A-Za-z]{1,64}$/, 'a key id looks like key_ followed by letters and digits');

/** The secret from an `Authorization: Bearer ni_live_…` header; undefined if absent or not that shape. */
export function parseBearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return m && isWellFormedSecret(m[1]) ? m[1] : undefined;
}

/**
 * `arn:aws:execute-api:region:account:apiId/stage/*\/*` from the invoked method's ARN. API Gateway caches the
 * policy per key for every route of the stage, so it must allow all of them, not just the first one called.
 */
export function stageWildcardArn(methodArn: string): string {
  const m = /^(arn:[^:]+:execute-api:[^:]+:[^:]+:[^/]+\/[^/]+)\//.exec(methodArn);
  return m ? `${m[1]}/*/*` : methodArn;
}

function canonicalTimezone(tz: string): string | undefined {
  // Intl also accepts offsets like "+05:00"; a spend day needs a named zone that follows its DST rules.
  if (!/^[A-Za-z][A-Za-z0-9_+\-]*(\/[A-Za-z0-9_+\-]+)*$/.test(tz)) return undefined;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** An IANA time zone name, normalised to its canonical spelling (e.g. "america/toronto" → "America/Toronto"). */
export const Timezone = z.string().transform((tz, ctx) => {
  const canonical = canonicalTimezone(tz);
  if (canonical) return canonical;
  ctx.addIssue({ code: 'custom', message: `unknown IANA time zone '${tz}' (e.g. America/Toronto, America/Vancouver, UTC)` });
  return z.NEVER;
});

const Label = z.string().trim().min(1).max(100);

/** A key's request limit; null: no such limit. */
const Limit = z.number().int().positive().nullable();
// The default applies when the limit is not given (undefined): options without it, records from before it existed.
const RequestsPerMinute = Limit.default(DEFAULT_REQUESTS_PER_MINUTE);
const MaxConcurrentRequests = Limit.default(DEFAULT_MAX_CONCURRENT_REQUESTS);

/** What `ni keys update` changes: each limit given is set, the other kept. */
export const LimitsUpdate = z.object({ requests_per_minute: Limit.optional(), max_concurrent_requests: Limit.optional() });
export type LimitsUpdate = z.infer<typeof LimitsUpdate>;

/** What a caller chooses when creating a key; everything else is generated. */
export const KeyOptions = z.object({
  /** The account (team or company) the key belongs to. */
  account_id: AccountId.default(DEFAULT_ACCOUNT_ID),
  name: Label,
  project: Label.nullable().default(null),
  /** The tier a request runs under when the client does not ask for one. */
  tier: Tier.default(DEFAULT_TIER),
  /** Pinned: the client cannot choose a tier at all. */
  tier_pinned: z.boolean().default(false),
  /** Tiers the client may ask for; default: `tier` and every stricter one. Must include `tier`. */
  allowed_tiers: z.array(Tier).min(1).optional(),
  /** micro-CAD per day in the key's timezone; null = no cap. */
  max_spend_per_day: z.number().int().nonnegative().nullable().default(null),
  timezone: Timezone.default(DEFAULT_TIMEZONE),
  pii_mode: PiiMode.default('substitute'),
  /** Output tokens asked for when a request names none, instead of the model's default (still capped by its limit). */
  default_max_tokens: z.number().int().positive().nullable().default(null),
  /** Requests per minute and requests in flight at once; null: no such limit (core/rate-limits). */
  requests_per_minute: RequestsPerMinute,
  max_concurrent_requests: MaxConcurrentRequests,
}).refine((o) => !o.allowed_tiers || o.allowed_tiers.includes(o.tier), {
  message: 'the allowed tiers must include the key\'s default tier', path: ['allowed_tiers'],
});
export type KeyOptions = z.input<typeof KeyOptions>;

export const KeyRecord = z.object({
  id: KeyId,
  /** Records written before accounts existed belong to the default account. */
  account_id: AccountId.default(DEFAULT_ACCOUNT_ID),
  name: Label,
  project: Label.nullable(),
  /** Display prefix of the secret, e.g. `ni_live_AbCd…`. */
  prefix: z.string(),
  created_at: z.iso.datetime(),
  revoked_at: z.iso.datetime().nullable(),
  tier: Tier,
  tier_pinned: z.boolean(),
  allowed_tiers: z.array(Tier).min(1),
  max_spend_per_day: z.number().int().nonnegative().nullable(),
  timezone: z.string().min(1),
  pii_mode: PiiMode,
  /** null: the model's catalog default. Records written before the field existed read as null. */
  default_max_tokens: z.number().int().positive().nullable().default(null),
  /** null: no such limit. Records written before the fields existed read as the defaults (core/rate-limits). */
  requests_per_minute: RequestsPerMinute,
  max_concurrent_requests: MaxConcurrentRequests,
  /** The customer's own provider credentials (BYOK), sealed, by provider; null: none. */
  byok: ByokEntries.nullable().default(null),
});
export type KeyRecord = z.infer<typeof KeyRecord>;

/** A new record from validated options (throws ZodError on invalid ones). */
export function newKeyRecord(opts: KeyOptions, meta: { id: string; prefix: string; now: Date }): KeyRecord {
  const o = KeyOptions.parse(opts);
  const allowed = o.allowed_tiers ?? defaultAllowedTiers(o.tier);
  return KeyRecord.parse({
    id: meta.id,
    account_id: o.account_id,
    name: o.name,
    project: o.project,
    prefix: meta.prefix,
    created_at: meta.now.toISOString(),
    revoked_at: null,
    tier: o.tier,
    tier_pinned: o.tier_pinned,
    allowed_tiers: [...new Set(allowed)].sort((a, b) => strictness(a) - strictness(b)),
    max_spend_per_day: o.max_spend_per_day,
    timezone: o.timezone,
    pii_mode: o.pii_mode,
    default_max_tokens: o.default_max_tokens,
    requests_per_minute: o.requests_per_minute,
    max_concurrent_requests: o.max_concurrent_requests,
    byok: null,
  });
}

export function keyToPrincipal(r: KeyRecord): Principal {
  return {
    keyId: r.id,
    tier: r.tier,
    tierPinned: r.tier_pinned,
    allowedTiers: r.allowed_tiers,
    maxSpendPerDay: r.max_spend_per_day,
    timezone: r.timezone,
    piiMode: r.pii_mode,
    ...(r.default_max_tokens !== null && { defaultMaxTokens: r.default_max_tokens }),
    requestsPerMinute: r.requests_per_minute,
    maxConcurrent: r.max_concurrent_requests,
    ...(r.byok && Object.keys(r.byok).length > 0 && { byok: byokCredentials(r.byok) }),
  };
}

/** What a request needs of the key's BYOK entries (not what only `ni keys byok show` prints). */
function byokCredentials(entries: ByokEntries): ByokCredentials {
  return Object.fromEntries(Object.entries(entries).map(([provider, { last4: _last4, set_at: _setAt, ...credential }]) => [provider, credential]));
}
