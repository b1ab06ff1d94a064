import * as z from 'zod';
import { ByokCredentials } from './byok';
import { GatewayError } from './errors';
import { DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_REQUESTS_PER_MINUTE } from './rate-limits';
import { DEFAULT_TIER, strictness, Tier, tierAndStricter } from './tiers';

export const PiiMode = z.enum(['substitute', 'block', 'off']);
export type PiiMode = z.infer<typeof PiiMode>;

export const DEFAULT_TIMEZONE = 'America/Toronto';

/** What the gateway knows about the key behind a request, as the authorizer hands it to the handlers. */
export const Principal = z.object({
  keyId: z.string().min(1),
  tier: Tier,
  tierPinned: z.boolean(),
  allowedTiers: z.array(Tier).min(1),
  /** micro-CAD; null = no cap. */
  maxSpendPerDay: z.number().int().nonnegative().nullable(),
  timezone: z.string().min(1),
  piiMode: PiiMode,
  /** Output tokens asked for when a request names none, instead of the model's default; absent: the model's. */
  defaultMaxTokens: z.number().int().positive().optional(),
  /** The key's request limits; null: no such limit (core/rate-limits). */
  requestsPerMinute: z.number().int().positive().nullable(),
  maxConcurrent: z.number().int().positive().nullable(),
  /** The key's own provider credentials, sealed (decrypted per request by the gateway). */
  byok: ByokCredentials.optional(),
});
export type Principal = z.infer<typeof Principal>;

export const defaultAllowedTiers = (tier: Tier = DEFAULT_TIER) => tierAndStricter(tier);

/** A request limit's "none" in the authorizer context, where an absent value means the default. */
const NO_LIMIT = 0;

/**
 * A request limit from the authorizer context: absent (the context of an authorizer deployed before the limits
 * existed) is the default a record without the field reads as; 0 is none, and so is the -1 that authorizers
 * deployed before the defaults wrote for none.
 */
function limitFromContext(v: unknown, byDefault: number): number | null {
  if (v === undefined || v === null || v === '') return byDefault;
  return Number(v) > NO_LIMIT ? Number(v) : null;
}

/** API Gateway authorizer context values must be strings, numbers or booleans: flatten. */
export function toAuthorizerContext(p: Principal): Record<string, string | number | boolean> {
  return {
    keyId: p.keyId,
    tier: p.tier,
    tierPinned: p.tierPinned,
    allowedTiers: p.allowedTiers.join(','),
    maxSpendPerDay: p.maxSpendPerDay ?? -1,
    timezone: p.timezone,
    piiMode: p.piiMode,
    defaultMaxTokens: p.defaultMaxTokens ?? -1,
    requestsPerMinute: p.requestsPerMinute ?? NO_LIMIT,
    maxConcurrent: p.maxConcurrent ?? NO_LIMIT,
    byok: p.byok ? JSON.stringify(p.byok) : '',
  };
}

const truthy = (v: unknown) => v === true || v === 'true';

/** API Gateway passes context values through as strings; the local runtime passes them as given. */
export function fromAuthorizerContext(ctx: Record<string, unknown> | null | undefined): Principal {
  if (!ctx || typeof ctx.keyId !== 'string') {
    throw new GatewayError(401, 'Invalid API key', 'invalid_request_error', 'invalid_api_key');
  }
  const cap = Number(ctx.maxSpendPerDay);
  const positive = (v: unknown) => (Number(v) > 0 ? Number(v) : undefined);
  return Principal.parse({
    keyId: ctx.keyId,
    tier: ctx.tier,
    tierPinned: truthy(ctx.tierPinned),
    allowedTiers: String(ctx.allowedTiers).split(','),
    maxSpendPerDay: cap >= 0 ? cap : null,
    timezone: ctx.timezone,
    piiMode: ctx.piiMode,
    // Absent from the context of an authorizer deployed before a field existed (NaN): no override.
    defaultMaxTokens: positive(ctx.defaultMaxTokens),
    requestsPerMinute: limitFromContext(ctx.requestsPerMinute, DEFAULT_REQUESTS_PER_MINUTE),
    maxConcurrent: limitFromContext(ctx.maxConcurrent, DEFAULT_MAX_CONCURRENT_REQUESTS),
    byok: typeof ctx.byok === 'string' && ctx.byok !== '' ? JSON.parse(ctx.byok) : undefined,
  });
}

/**
 * The tier a request runs under. A pinned key ignores what the client asks; an unpinned key may ask for any
 * tier in its allowed set; anything else is refused rather than silently replaced. A request may ask in more
 * than one place (the body's `ni.privacy_tier` and the X-NI-Privacy-Tier header): each must be allowed, and the
 * stricter wins, so a proxy that sets the header cannot be widened by the body it forwards.
 */
export function resolveTier(p: Principal, ...requested: (string | undefined)[]): Tier {
  if (p.tierPinned) return p.tier;
  const asked = requested.filter((r): r is string => r !== undefined && r !== '').map((r) => allowedTier(p, r));
  if (asked.length === 0) return p.tier;
  return asked.reduce((a, b) => (strictness(b) < strictness(a) ? b : a));
}

function allowedTier(p: Principal, requested: string): Tier {
  const asked = Tier.safeParse(requested);
  if (!asked.success) {
    throw new GatewayError(403, `Unknown privacy tier '${requested}'. Tiers: ${Tier.options.join(', ')}`,
      'permission_error', 'invalid_privacy_tier', 'privacy_tier');
  }
  if (!p.allowedTiers.includes(asked.data)) {
    throw new GatewayError(403,
      `This API key may not use privacy tier '${asked.data}'. Allowed tiers: ${p.allowedTiers.join(', ')}`,
      'permission_error', 'privacy_tier_not_allowed', 'privacy_tier');
  }
  return asked.data;
}
