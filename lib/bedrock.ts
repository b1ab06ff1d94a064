import type { Route } from '../lambdas/core/catalog';
import { inferenceProfile } from '../lambdas/providers/bedrock/profiles';

/** Bedrock actions the gateway needs: nothing else, on nothing but the catalog's models. */
export const BEDROCK_INVOKE_ACTIONS = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];

/**
 * The resources a set of catalog routes may invoke. A plain model id is one foundation model in the route's
 * region. An inference profile needs the profile ARN (in the caller's account) plus the foundation model in
 * every region the profile may route to: any region (`*`) for a geographic profile, since AWS adds
 * destination regions over time, and additionally the region-less ARN for a `global.` profile.
 */
export function bedrockInvokeArns(routes: readonly Pick<Route, 'provider' | 'region' | 'upstream_id'>[], account: string): string[] {
  const arns = new Set<string>();
  for (const route of routes) {
    if (route.provider !== 'bedrock') continue;
    const profile = inferenceProfile(route.upstream_id);
    if (!profile) {
      arns.add(`arn:aws:bedrock:${route.region}::foundation-model/${route.upstream_id}`);
      continue;
    }
    const { geography, modelId } = profile;
    arns.add(`arn:aws:bedrock:${route.region}:${account}:inference-profile/${route.upstream_id}`);
    arns.add(`arn:aws:bedrock:*::foundation-model/${modelId}`);
    if (geography === 'global') arns.add(`arn:aws:bedrock:::foundation-model/${modelId}`);
  }
  return [...arns].sort();
}
