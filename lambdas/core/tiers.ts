import * as z from 'zod';

/** Privacy tiers, strictest first. */
export const TIERS = ['canadian_sovereign', 'managed_canadian_cloud', 'global'] as const;
export const Tier = z.enum(TIERS);
export type Tier = z.infer<typeof Tier>;
export const DEFAULT_TIER: Tier = 'managed_canadian_cloud';

/** Where an upstream endpoint processes data. */
export const JURISDICTIONS = ['CA', 'US', 'EU', 'GLOBAL'] as const;
export const Jurisdiction = z.enum(JURISDICTIONS);
export type Jurisdiction = z.infer<typeof Jurisdiction>;

export interface Residency {
  jurisdiction: Jurisdiction;
  /** Declared by the operator: Canadian infrastructure under Canadian control (e.g. a self-hosted endpoint). */
  canadian_controlled: boolean;
}

/** The one rule deciding which endpoints a tier may send data to. */
export function tierAllows(tier: Tier, r: Residency): boolean {
  switch (tier) {
    case 'canadian_sovereign':
      return r.jurisdiction === 'CA' && r.canadian_controlled;
    case 'managed_canadian_cloud':
      return r.jurisdiction === 'CA';
    case 'global':
      return true;
  }
}

export const strictness = (t: Tier) => TIERS.indexOf(t);

/** A key's default tier and every stricter one. */
export const tierAndStricter = (t: Tier): Tier[] => TIERS.slice(0, strictness(t) + 1);
