import type { Route } from '../../core/catalog';

/** Bedrock cross-region inference profiles: the id's prefix says where AWS may process the data. */
export const PROFILE_JURISDICTION: Readonly<Record<string, string>> = {
  us: 'US', 'us-gov': 'US', eu: 'EU', global: 'GLOBAL', ca: 'CA', apac: 'APAC', jp: 'JP', au: 'AU',
};

/** `us.anthropic.claude-…` → its geography, jurisdiction and underlying model id; a plain model id → null. */
export function inferenceProfile(upstreamId: string): { geography: string; jurisdiction: string; modelId: string } | null {
  const dot = upstreamId.indexOf('.');
  const geography = upstreamId.slice(0, dot);
  const jurisdiction = dot > 0 ? PROFILE_JURISDICTION[geography] : undefined;
  return jurisdiction ? { geography, jurisdiction, modelId: upstreamId.slice(dot + 1) } : null;
}

/** A region's own jurisdiction (where a plain, in-region model id processes data). */
export function regionJurisdiction(region: string): string {
  const area = region.split('-')[0];
  return ({ ca: 'CA', us: 'US', eu: 'EU' } as Record<string, string>)[area] ?? area.toUpperCase();
}

/**
 * A catalog route's residency label against what Bedrock does with it: an inference profile processes data in
 * its prefix's geography, a plain model id in the route's region; Bedrock is no Canadian-controlled
 * infrastructure. Returns what contradicts, or null.
 */
export function checkBedrockRoute(route: Route): string | null {
  const profile = inferenceProfile(route.upstream_id);
  const actual = profile?.jurisdiction ?? regionJurisdiction(route.region);
  if (actual !== route.jurisdiction) {
    return profile
      ? `prefix "${profile.geography}." processes data in ${actual}, but the catalog says ${route.jurisdiction}`
      : `a plain model id in ${route.region} processes data in ${actual}, but the catalog says ${route.jurisdiction}`;
  }
  if (route.canadian_controlled) return 'Bedrock is AWS infrastructure, but the catalog says canadian_controlled';
  return null;
}
