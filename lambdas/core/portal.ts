import * as z from 'zod';
import { maskedSecret } from './byok';
import type { Catalog } from './catalog';
import { publicCatalog, type PublicModel } from './billing';
import { KeyOptions, type KeyRecord, LimitsUpdate } from './keys';
import { parseCad } from './pricing';
import { TIERS, tierAllows, type Tier } from './tiers';

/*
 * What the portal's pages show and accept, independent of how they are served.
 */

/** Where a model processes a request under each tier it allows: the first route the tier may use. */
export interface PortalModel extends PublicModel {
  placements: { tier: Tier; provider: string; region: string; jurisdiction: string }[];
}

export function portalModels(c: Catalog): PortalModel[] {
  const pub = new Map(publicCatalog(c).models.map((m) => [m.model_id, m]));
  return c.models.map((m) => ({
    ...pub.get(m.id)!,
    placements: TIERS.flatMap((tier) => {
      const route = m.served.find((r) => tierAllows(tier, r));
      return route ? [{ tier, provider: route.provider, region: route.region, jurisdiction: route.jurisdiction }] : [];
    }),
  }));
}

/**
 * The portal's create-key form: a key's options in the units a person types (the cap in CAD). A request limit left
 * out gets KeyOptions' default; null: no such limit.
 */
export const PortalKeyCreate = z.object({
  name: z.string(),
  project: z.string().trim().max(100).optional().transform((p) => p || null),
  tier: z.enum(TIERS),
  tier_pinned: z.boolean().default(false),
  allowed_tiers: z.array(z.enum(TIERS)).min(1).optional(),
  max_spend_per_day_cad: z.string().regex(/^\d+(\.\d{1,6})?$/, 'an amount in CAD such as 25.00').nullable().default(null),
  timezone: z.string().optional(),
  pii_mode: z.enum(['substitute', 'block', 'off']).default('substitute'),
  ...LimitsUpdate.shape,
}).strict();

/** The portal's change of a key's request limits: the same as `ni keys update`. */
export const PortalLimitsUpdate = LimitsUpdate.strict();

/** The key options for `accountId` (the signed-in user's, never the client's) from the form. */
export function keyOptionsFrom(accountId: string, form: z.infer<typeof PortalKeyCreate>): KeyOptions {
  const { max_spend_per_day_cad, ...rest } = form;
  return KeyOptions.parse({
    ...rest,
    account_id: accountId,
    max_spend_per_day: max_spend_per_day_cad === null ? null : parseCad(max_spend_per_day_cad),
  });
}

/** A key as the Keys page lists it: never its hash or secret. */
export function keyView(k: KeyRecord, today: { day: string; spent: number; reserved: number } | null, lastUsedAt: string | null) {
  return {
    id: k.id,
    name: k.name,
    project: k.project,
    prefix: k.prefix,
    created_at: k.created_at,
    revoked_at: k.revoked_at,
    tier: k.tier,
    tier_pinned: k.tier_pinned,
    allowed_tiers: k.allowed_tiers,
    max_spend_per_day_micro_cad: k.max_spend_per_day,
    timezone: k.timezone,
    pii_mode: k.pii_mode,
    requests_per_minute: k.requests_per_minute,
    max_concurrent_requests: k.max_concurrent_requests,
    spend_today_micro_cad: today?.spent ?? 0,
    reserved_today_micro_cad: today?.reserved ?? 0,
    last_used_at: lastUsedAt,
    /** Bring-your-own provider credentials: which providers, masked; never a secret or its envelope. */
    byok: Object.entries(k.byok ?? {}).map(([provider, e]) => ({ provider, masked: maskedSecret(e.last4), set_at: e.set_at, allow_fallback: e.allow_fallback })),
  };
}
