import { BedrockClient, ListFoundationModelsCommand, paginateListInferenceProfiles } from '@aws-sdk/client-bedrock';
import { type Catalog, type Route } from '../../lambdas/core/catalog';
import { uncheckedCatalog } from '../../lambdas/catalog';
import { checkBedrockRoute, inferenceProfile } from '../../lambdas/providers/bedrock/profiles';
import { runCommand, UsageError } from '../cli-env';

export const USAGE = `usage: ni catalog check [--region REGION] [--endpoint URL] [--json]

  Checks every Bedrock route of the catalog (NI_CATALOG_FILE, or the built-in one) against Bedrock itself:
  the upstream id must exist in the route's region (a foundation model invocable on demand, or an inference
  profile), and its prefix must agree with the jurisdiction the catalog declares (us. → US, eu. → EU,
  global. → GLOBAL, a plain model id → its region's country: ca-* → CA, us-* → US). Routes marked
  "verified": false are listed with what the check found. Exits 1 when a problem is found.
    --region    check only the routes in this region (default: every region the catalog uses)
    --endpoint  Bedrock control-plane endpoint (default: the region's public endpoint)
    --json      machine-readable report
  Needs AWS credentials allowed bedrock:ListFoundationModels and bedrock:ListInferenceProfiles.`;

const FLAGS = { endpoint: { type: 'string' }, json: { type: 'boolean' } } as const;

export interface RegionListing {
  foundationModels: { modelId: string; onDemand: boolean; lifecycle: string }[];
  inferenceProfiles: string[];
}

export interface RouteReport {
  model: string;
  region: string;
  upstream_id: string;
  jurisdiction: string;
  kind: 'inference_profile' | 'foundation_model';
  /** As written in the catalog. */
  verified: boolean;
  found: boolean;
  problems: string[];
  notes: string[];
}

export const bedrockRoutes = (c: Catalog): { model: string; route: Route }[] =>
  [...c.byId.values()].flatMap((m) => m.routes.filter((r) => r.provider === 'bedrock').map((route) => ({ model: m.id, route })));

/** Compares the catalog's Bedrock routes with what Bedrock lists in each region. Pure: listings come in. */
export function checkRoutes(routes: { model: string; route: Route }[], listings: ReadonlyMap<string, RegionListing>): RouteReport[] {
  return routes.map(({ model, route }) => {
    const listing = listings.get(route.region) ?? { foundationModels: [], inferenceProfiles: [] };
    const profile = inferenceProfile(route.upstream_id);
    const kind = profile ? 'inference_profile' : 'foundation_model';
    const problems: string[] = [];
    const notes: string[] = [];
    let found: boolean;
    if (kind === 'inference_profile') {
      found = listing.inferenceProfiles.includes(route.upstream_id);
      if (!found) problems.push(`no inference profile ${route.upstream_id} in ${route.region}`);
    } else {
      const fm = listing.foundationModels.find((f) => f.modelId === route.upstream_id);
      found = fm !== undefined;
      if (!fm) problems.push(`no foundation model ${route.upstream_id} in ${route.region}`);
      else if (!fm.onDemand) problems.push(`${route.upstream_id} cannot be invoked on demand in ${route.region} (it needs an inference profile)`);
      if (fm && fm.lifecycle !== 'ACTIVE') notes.push(`lifecycle status ${fm.lifecycle}`);
    }
    const contradiction = checkBedrockRoute(route);
    if (contradiction) problems.push(contradiction);
    if (!route.verified) notes.push(found ? 'marked unverified in the catalog; found upstream' : 'marked unverified in the catalog');
    return { model, region: route.region, upstream_id: route.upstream_id, jurisdiction: route.jurisdiction, kind, verified: route.verified, found, problems, notes };
  });
}

async function listRegion(region: string, endpoint: string | undefined): Promise<RegionListing> {
  const client = new BedrockClient({ region, ...(endpoint ? { endpoint } : {}) });
  try {
    // ListFoundationModels is not paginated; ListInferenceProfiles is.
    const fms = await client.send(new ListFoundationModelsCommand({}));
    const inferenceProfiles: string[] = [];
    for await (const page of paginateListInferenceProfiles({ client }, {})) {
      for (const p of page.inferenceProfileSummaries ?? []) if (p.inferenceProfileId) inferenceProfiles.push(p.inferenceProfileId);
    }
    return {
      foundationModels: (fms.modelSummaries ?? []).map((f) => ({
        modelId: f.modelId ?? '',
        onDemand: f.inferenceTypesSupported === undefined || f.inferenceTypesSupported.includes('ON_DEMAND'),
        lifecycle: f.modelLifecycle?.status ?? 'ACTIVE',
      })),
      inferenceProfiles,
    };
  } catch (err) {
    throw new Error(`cannot list Bedrock models in ${region}: ${(err as Error).message}`);
  } finally {
    client.destroy();
  }
}

export function run(argv: string[]): Promise<number> {
  return runCommand({ usage: USAGE, flags: FLAGS }, argv, async ({ values: flags, positionals }) => {
    if (positionals[0] !== 'check' || positionals.length > 1) {
      throw new UsageError(positionals[0] && positionals[0] !== 'check' ? `unknown subcommand '${positionals[0]}'` : 'usage: ni catalog check');
    }
    if (flags.stack) throw new UsageError('ni catalog check reads Bedrock, not a stack: --stack does not apply');
    const routes = bedrockRoutes(uncheckedCatalog()).filter(({ route }) => !flags.region || route.region === flags.region);
    if (routes.length === 0) throw new UsageError(`the catalog has no Bedrock routes${flags.region ? ` in ${flags.region}` : ''}`);
    const regions = [...new Set(routes.map(({ route }) => route.region))];
    const listings = new Map(await Promise.all(regions.map(async (r) => [r, await listRegion(r, flags.endpoint)] as const)));
    const report = checkRoutes(routes, listings);
    const problems = report.reduce((n, r) => n + r.problems.length, 0);
    if (flags.json) console.log(JSON.stringify({ regions, problems, routes: report }, null, 2));
    else console.log(text(regions, report, problems));
    return problems > 0 ? 1 : 0;
  });
}

function text(regions: string[], report: RouteReport[], problems: number): string {
  const lines = [`Checked ${report.length} Bedrock routes in ${regions.join(', ')}.`, ''];
  for (const r of report) {
    const status = r.problems.length > 0 ? 'PROBLEM' : 'ok';
    lines.push(`${status.padEnd(7)}  ${r.model}  ${r.region}  ${r.upstream_id}  (${r.jurisdiction}${r.verified ? '' : ', unverified'})`);
    for (const p of r.problems) lines.push(`         - ${p}`);
    for (const n of r.notes) lines.push(`         · ${n}`);
  }
  lines.push('', problems > 0 ? `${problems} problem(s) found.` : 'No problems found.');
  return lines.join('\n');
}
