import type { Route } from '../core/catalog';
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
export const ROUTE_CHECKS: Partial<Record<ProviderName, RouteCheck>> = { bedrock: checkBedrockRoute };
