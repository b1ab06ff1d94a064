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
