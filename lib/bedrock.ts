import * as iam from 'aws-cdk-lib/aws-iam';
import type { Route } from '../lambdas/core/catalog';
import { inferenceProfile } from '../lambdas/providers/bedrock/profiles';

/** Bedrock actions the gateway needs: nothing else, on nothing but the catalog's models. */
export const BEDROCK_INVOKE_ACTIONS = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];

type BedrockRoute = Pick<Route, 'provider' | 'region' | 'upstream_id'>;

/**
 * What a set of catalog routes may invoke. `direct`: a plain model id's foundation model in the route's region,
 * and each inference profile's ARN (in the caller's account). `viaProfile`: the foundation models behind the
 * profiles, in every region a profile may route to (any region, `*`, for a geographic profile, since AWS adds
 * destination regions over time; also the region-less ARN for a `global.` profile); those may be invoked only
 * through the `profiles`, so the role cannot call them directly in another region.
 */
export function bedrockInvokeGrants(routes: readonly BedrockRoute[], account: string): { direct: string[]; viaProfile: string[]; profiles: string[] } {
  const direct = new Set<string>();
  const viaProfile = new Set<string>();
  const profiles = new Set<string>();
  for (const route of routes) {
    if (route.provider !== 'bedrock') continue;
    const profile = inferenceProfile(route.upstream_id);
    if (!profile) {
      direct.add(`arn:aws:bedrock:${route.region}::foundation-model/${route.upstream_id}`);
      continue;
    }
    const { geography, modelId } = profile;
    const arn = `arn:aws:bedrock:${route.region}:${account}:inference-profile/${route.upstream_id}`;
    direct.add(arn);
    profiles.add(arn);
    viaProfile.add(`arn:aws:bedrock:*::foundation-model/${modelId}`);
    if (geography === 'global') viaProfile.add(`arn:aws:bedrock:::foundation-model/${modelId}`);
  }
  const sorted = (s: Set<string>) => [...s].sort();
  return { direct: sorted(direct), viaProfile: sorted(viaProfile), profiles: sorted(profiles) };
}

/** Every resource the routes may invoke, however conditioned. */
export function bedrockInvokeArns(routes: readonly BedrockRoute[], account: string): string[] {
  const { direct, viaProfile } = bedrockInvokeGrants(routes, account);
  return [...direct, ...viaProfile].sort();
}

/** The gateway's Bedrock policy: the direct grants, and the profiles' models on condition of going through them. */
export function bedrockInvokeStatements(routes: readonly BedrockRoute[], account: string): iam.PolicyStatement[] {
  const { direct, viaProfile, profiles } = bedrockInvokeGrants(routes, account);
  const statements = [new iam.PolicyStatement({ actions: BEDROCK_INVOKE_ACTIONS, resources: direct })];
  if (viaProfile.length) {
    statements.push(new iam.PolicyStatement({
      actions: BEDROCK_INVOKE_ACTIONS,
      resources: viaProfile,
      conditions: { StringEquals: { 'bedrock:InferenceProfileArn': profiles } },
    }));
  }
  return statements;
}
