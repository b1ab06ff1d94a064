import type { Route } from '../core/catalog';
import { AZURE_CANADIAN_REGIONS } from '../core/byok';
import { checkBedrockRoute } from './bedrock/profiles';

/** The upstream APIs the gateway has a client for (each a folder beside this file, created in registry.ts). */
export const PROVIDER_NAMES = ['bedrock', 'azure_openai', 'openai', 'openai_compatible', 'vertex_ai', 'anthropic'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/**
 * What in a catalog route contradicts its residency label (its `jurisdiction`, `canadian_controlled`) as the
 * provider processes it, or null: a contradicted route is refused when the catalog loads. Pure functions, so
 * that checking the catalog loads no provider client.
 */
export type RouteCheck = (route: Route) => string | null;

/**
 * A hyperscaler's or vendor's API: never Canadian-controlled infrastructure, and labelled CA exactly when the
 * route's region is one of `canadian` (none, for an API that processes wherever its vendor chooses).
 */
const regional = (name: string, canadian: readonly string[]): RouteCheck => (r) => {
  if (r.canadian_controlled) return `${name} is not Canadian-controlled infrastructure`;
  const inCanada = canadian.includes(r.region);
  if (inCanada !== (r.jurisdiction === 'CA')) return `region ${r.region} is ${inCanada ? '' : 'not '}in Canada, the label says ${r.jurisdiction}`;
  return null;
};

export const ROUTE_CHECKS: Partial<Record<ProviderName, RouteCheck>> = {
  bedrock: checkBedrockRoute,
  azure_openai: regional('Azure OpenAI', AZURE_CANADIAN_REGIONS),
  openai: regional("OpenAI's API", []),
  anthropic: regional("Anthropic's API", []),
  vertex_ai: (r) => (r.region === 'global' && r.jurisdiction !== 'GLOBAL'
    ? "Vertex AI's global endpoint promises no location: its label is GLOBAL"
    : regional('Vertex AI', ['northamerica-northeast1', 'northamerica-northeast2'])(r)),
};
