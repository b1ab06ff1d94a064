import { BedrockClient, ListFoundationModelsCommand, paginateListInferenceProfiles } from '@aws-sdk/client-bedrock';
import { providerSettings } from '../../lambdas/compose';
import { type Catalog, type Route } from '../../lambdas/core/catalog';
import { uncheckedCatalog } from '../../lambdas/catalog';
import { inferenceProfile } from '../../lambdas/providers/bedrock/profiles';
import { ROUTE_CHECKS, type ProviderName } from '../../lambdas/providers/names';
import { listAzureDeployments, listAzureDeploymentsManaged, type AzureResourceListing } from '../../lambdas/providers/openai-compatible';
import { missingConfiguration, type ProviderSettings } from '../../lambdas/providers/registry';
import { publisherModelExists } from '../../lambdas/providers/vertex-ai';
import { runCommand, UsageError } from '../cli-env';

export const USAGE = `usage: ni catalog check [--region REGION] [--endpoint URL] [--azure-resource-id ID] [--json]

  Asks each configured provider whether the catalog's routes (NI_CATALOG_FILE, or the built-in one) exist there,
  and checks each route's jurisdiction against what the provider does with it:
  - Bedrock: the upstream id must exist in the route's region (a foundation model invocable on demand, or an
    inference profile), its prefix agreeing with the jurisdiction (us. → US, eu. → EU, global. → GLOBAL, a plain
    model id → its region's country: ca-* → CA, us-* → US). Needs AWS credentials allowed
    bedrock:ListFoundationModels and bedrock:ListInferenceProfiles.
  - Azure OpenAI: the resource (NI_AZURE_OPENAI_ENDPOINT) must have a deployment named as the route's upstream
    id, in the succeeded state; listed with the resource's key (the azure_openai credential). With
    --azure-resource-id, listed from Azure Resource Manager instead, which also shows the resource's region and each
    deployment's type: the route's region and a Standard (regional) or regional provisioned deployment are required.
  - Vertex AI: Google's publisher model must be served from the route's location (its regional endpoint, or
    NI_VERTEX_ENDPOINT), asked with the gateway's Vertex credentials (a key, or workload identity federation).
  Credentials come as the gateway takes them: NI_PROVIDER_SECRETS_FILE, or NI_PROVIDER_SECRET_ARNS (Secrets
  Manager). A provider this environment has not configured is skipped, saying what it lacks. Routes marked
  "verified": false are listed with what the check found. Exits 1 when a problem is found.
    --region    check only the routes in this region (default: every region the catalog uses)
    --endpoint  Bedrock control-plane endpoint (default: the region's public endpoint)
    --azure-resource-id  the Azure OpenAI account's ARM id (/subscriptions/…/resourceGroups/…/providers/
                Microsoft.CognitiveServices/accounts/…); needs NI_AZURE_MANAGEMENT_TOKEN, an Entra ID token for Azure
                Resource Manager (az account get-access-token --resource https://management.azure.com)
    --azure-management-endpoint  instead of https://management.azure.com
    --json      machine-readable report`;

const FLAGS = {
  endpoint: { type: 'string' }, json: { type: 'boolean' }, 'azure-resource-id': { type: 'string' }, 'azure-management-endpoint': { type: 'string' },
} as const;
type Flags = { 'azure-resource-id'?: string; 'azure-management-endpoint'?: string };
const AZURE_MANAGEMENT_ENDPOINT = 'https://management.azure.com';

export interface RegionListing {
  foundationModels: { modelId: string; onDemand: boolean; lifecycle: string }[];
  inferenceProfiles: string[];
}

export interface RouteReport {
  model: string;
  provider: string;
  region: string;
  upstream_id: string;
  jurisdiction: string;
  kind: 'inference_profile' | 'foundation_model' | 'deployment' | 'publisher_model';
  /** As written in the catalog. */
  verified: boolean;
  found: boolean;
  problems: string[];
  notes: string[];
}

type CatalogRoute = { model: string; route: Route };

const routesOf = (c: Catalog, provider: ProviderName): CatalogRoute[] =>
  [...c.byId.values()].flatMap((m) => m.routes.filter((r) => r.provider === provider).map((route) => ({ model: m.id, route })));
export const bedrockRoutes = (c: Catalog) => routesOf(c, 'bedrock');

/** A route's report from what its provider said: found or not, the problems, and the checks every route gets. */
function report({ model, route }: CatalogRoute, kind: RouteReport['kind'], found: boolean, problems: string[], notes: string[] = []): RouteReport {
  const contradiction = ROUTE_CHECKS[route.provider as ProviderName]?.(route);
  if (contradiction) problems.push(contradiction);
  if (!route.verified) notes.push(found ? 'marked unverified in the catalog; found upstream' : 'marked unverified in the catalog');
  return { model, provider: route.provider, region: route.region, upstream_id: route.upstream_id, jurisdiction: route.jurisdiction, kind, verified: route.verified, found, problems, notes };
}

/** Compares the catalog's Bedrock routes with what Bedrock lists in each region. Pure: listings come in. */
export function checkRoutes(routes: CatalogRoute[], listings: ReadonlyMap<string, RegionListing>): RouteReport[] {
  return routes.map((r) => {
    const { route } = r;
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
    return report(r, kind, found, problems, notes);
  });
}

/** The deployment types that process in the deployment's region; Global and Data Zone ones may process elsewhere. */
const REGIONAL_AZURE_SKUS = new Set(['Standard', 'ProvisionedManaged']);

/**
 * Compares the catalog's Azure OpenAI routes (upstream id: the deployment's name) with the resource's deployments
 * and, from the management plane, its region and each deployment's type: a route kept in its region needs a
 * regional deployment in a resource of that region.
 */
export function checkAzureRoutes(routes: CatalogRoute[], listing: AzureResourceListing): RouteReport[] {
  return routes.map((r) => {
    const d = listing.deployments.find((x) => x.name === r.route.upstream_id);
    if (!d) return report(r, 'deployment', false, [`no deployment ${r.route.upstream_id} in the Azure OpenAI resource`]);
    const problems: string[] = [];
    if (d.state.toLowerCase() !== 'succeeded') problems.push(`deployment ${d.name} is ${d.state}, not succeeded`);
    if (listing.location !== undefined && listing.location !== r.route.region) problems.push(`the resource is in ${listing.location}, the route says ${r.route.region}`);
    if (d.sku !== undefined && !REGIONAL_AZURE_SKUS.has(d.sku)) problems.push(`deployment ${d.name} is ${d.sku}, which may process outside ${r.route.region}: the route needs a Standard (regional) or regional provisioned deployment`);
    const notes = [`model ${d.model}${d.sku ? `, ${d.sku}` : ''}`];
    if (d.sku === undefined) notes.push('deployment type not visible with the resource key: give --azure-resource-id to check it');
    return report(r, 'deployment', true, problems, notes);
  });
}

/** A provider whose routes were not asked about, and why. */
export interface Skipped {
  provider: string;
  routes: number;
  reason: string;
}

/** The providers `ni catalog check` asks besides Bedrock: each one's routes, reported from its own listing. */
const CHECKED: Partial<Record<ProviderName, (routes: CatalogRoute[], s: ProviderSettings, flags: Flags) => Promise<RouteReport[]>>> = {
  async azure_openai(routes, s, flags) {
    if (!flags['azure-resource-id']) return checkAzureRoutes(routes, await listAzureDeployments(s.endpoints.azure_openai!, s.secrets));
    const token = process.env.NI_AZURE_MANAGEMENT_TOKEN;
    if (!token) throw new UsageError('--azure-resource-id needs an Azure Resource Manager token in NI_AZURE_MANAGEMENT_TOKEN');
    return checkAzureRoutes(routes, await listAzureDeploymentsManaged(flags['azure-management-endpoint'] ?? AZURE_MANAGEMENT_ENDPOINT, flags['azure-resource-id'], token));
  },
  async vertex_ai(routes, s) {
    const exists = publisherModelExists({ endpoint: s.endpoints.vertex_ai, project: s.vertexProject, workloadIdentity: s.vertexWorkloadIdentity, secrets: s.secrets });
    return Promise.all(routes.map(async (r) => {
      const found = await exists(r.route);
      return report(r, 'publisher_model', found, found ? [] : [`no publisher model ${r.route.upstream_id} in ${r.route.region}`]);
    }));
  },
};

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
    if (flags.stack) throw new UsageError('ni catalog check asks the providers, not a stack: --stack does not apply');
    const c = uncheckedCatalog();
    const inRegion = ({ route }: CatalogRoute) => !flags.region || route.region === flags.region;
    const routes = bedrockRoutes(c).filter(inRegion);
    const others = (Object.keys(CHECKED) as ProviderName[]).map((p) => [p, routesOf(c, p).filter(inRegion)] as const).filter(([, rs]) => rs.length > 0);
    if (routes.length === 0 && others.length === 0) throw new UsageError(`the catalog has no routes to check${flags.region ? ` in ${flags.region}` : ''}`);
    const regions = [...new Set(routes.map(({ route }) => route.region))];
    const listings = new Map(await Promise.all(regions.map(async (r) => [r, await listRegion(r, flags.endpoint)] as const)));
    const reports = checkRoutes(routes, listings);
    const skipped: Skipped[] = [];
    const settings = providerSettings(c.endpoints);
    const missing = missingConfiguration(settings);
    for (const [provider, rs] of others) {
      const lacks = rs.map(({ route }) => missing(route)).find((m) => m !== undefined);
      if (lacks) skipped.push({ provider, routes: rs.length, reason: lacks });
      else reports.push(...await CHECKED[provider]!(rs, settings, flags));
    }
    const problems = reports.reduce((n, r) => n + r.problems.length, 0);
    if (flags.json) console.log(JSON.stringify({ regions, problems, routes: reports, skipped }, null, 2));
    else console.log(text(regions, reports, skipped, problems));
    return problems > 0 ? 1 : 0;
  });
}

const PROVIDER_TITLES: Record<string, string> = { bedrock: 'Bedrock', azure_openai: 'Azure OpenAI', vertex_ai: 'Vertex AI' };

function text(regions: string[], reports: RouteReport[], skipped: Skipped[], problems: number): string {
  const bedrock = reports.filter((r) => r.provider === 'bedrock').length;
  const lines = [bedrock ? `Checked ${bedrock} Bedrock routes in ${regions.join(', ')}.` : 'No Bedrock routes checked.'];
  for (const provider of Object.keys(CHECKED)) {
    const n = reports.filter((r) => r.provider === provider).length;
    if (n) lines.push(`Checked ${n} ${PROVIDER_TITLES[provider]} routes.`);
  }
  for (const s of skipped) lines.push(`Skipped ${s.routes} ${PROVIDER_TITLES[s.provider]} routes: ${s.reason}.`);
  lines.push('');
  for (const r of reports) {
    const status = r.problems.length > 0 ? 'PROBLEM' : 'ok';
    lines.push(`${status.padEnd(7)}  ${r.model}  ${r.provider === 'bedrock' ? '' : `${r.provider} `}${r.region}  ${r.upstream_id}  (${r.jurisdiction}${r.verified ? '' : ', unverified'})`);
    for (const p of r.problems) lines.push(`         - ${p}`);
    for (const n of r.notes) lines.push(`         · ${n}`);
  }
  lines.push('', problems > 0 ? `${problems} problem(s) found.` : 'No problems found.');
  return lines.join('\n');
}
