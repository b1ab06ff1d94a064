import * as z from 'zod';
import { GatewayError } from './errors';
import { parseCad, type Prices } from './pricing';
import { Jurisdiction, TIERS, Tier, tierAllows } from './tiers';

const Cad = z.string().regex(/^\d+(\.\d{1,6})?$/, 'a CAD amount like "4.14"');

const EndpointName = z.string().regex(/^[a-z0-9_-]+$/, 'an endpoint name like "sovereign-vllm"');

/** An OpenAI-compatible server the operator runs or contracts (vLLM, Ollama, TGI, Cohere's compatibility API). */
const EndpointSchema = z.object({
  /**
   * The base URL of its OpenAI API. Optional: a deployment gives it in its settings (NI_OPENAI_COMPATIBLE_BASE_URLS,
   * the stack's openaiCompatibleBaseUrls context); an endpoint without one has its routes not served.
   */
  base_url: z.url().optional(),
  /** true: calls carry a bearer credential, the secret `openai_compatible:<name>`. */
  secret: z.boolean().default(false),
});
export type Endpoint = z.infer<typeof EndpointSchema>;

const RouteSchema = z.object({
  provider: z.string().min(1),
  region: z.string().min(1),
  upstream_id: z.string().min(1),
  jurisdiction: Jurisdiction,
  canadian_controlled: z.boolean().default(false),
  /** The catalog endpoint serving this route (provider `openai_compatible`). */
  endpoint: EndpointName.optional(),
  /** false: the upstream id could not be confirmed offline; `ni catalog check` verifies it. */
  verified: z.boolean().default(false),
});
export type Route = z.infer<typeof RouteSchema>;

const ModelSchema = z.object({
  id: z.string().regex(/^[a-z0-9_-]+\/[a-z0-9._-]+$/, 'an NI model id like "provider/model-name"'),
  display_name: z.string().min(1),
  provider: z.string().min(1),
  context_window: z.number().int().positive(),
  max_output_tokens: z.number().int().positive(),
  /**
   * Output tokens asked of the provider when a request names none (Cursor never does). Asking for the model's
   * maximum instead would reserve tokens-per-minute quota and spend-cap headroom for output that rarely comes.
   */
  default_max_tokens: z.number().int().positive().optional(),
  capabilities: z.object({ streaming: z.boolean(), tools: z.boolean(), vision: z.boolean() }),
  pricing: z.object({
    input_per_mtok: Cad,
    output_per_mtok: Cad,
    cache_read_per_mtok: Cad.optional(),
    cache_write_per_mtok: Cad.optional(),
  }),
  routes: z.array(RouteSchema),
}).refine((m) => m.default_max_tokens === undefined || m.default_max_tokens <= m.max_output_tokens, {
  message: 'default_max_tokens must not exceed max_output_tokens', path: ['default_max_tokens'],
});

/**
 * The catalog's `endpoints` as a deployment configures them: a base URL given in its settings
 * (NI_OPENAI_COMPATIBLE_BASE_URLS, the stack's openaiCompatibleBaseUrls context) replaces the catalog's.
 */
export function withBaseUrls(endpoints: Readonly<Record<string, Endpoint>>, baseUrls: Readonly<Record<string, string>> = {}): Record<string, Endpoint> {
  return Object.fromEntries(Object.entries(endpoints).map(([name, e]) => [name, { ...e, base_url: baseUrls[name] ?? e.base_url }]));
}

/** 5% of the list price, for a catalog file that names no BYOK fee. */
export const DEFAULT_BYOK_ROUTING_FEE_BPS = 500;

const CatalogFileSchema = z.object({
  version: z.literal(1),
  notes: z.string().optional(),
  /**
   * The routing-only fee of a request served with the customer's own credential (BYOK), as a fraction of the
   * model's list price in basis points (500 = 5%), applied to each token class's price.
   */
  byok_routing_fee_bps: z.number().int().min(0).max(10_000).default(DEFAULT_BYOK_ROUTING_FEE_BPS),
  endpoints: z.record(EndpointName, EndpointSchema).default({}),
  models: z.array(ModelSchema).min(1),
});

/** A model's default output budget when its catalog entry names none. */
export const FALLBACK_DEFAULT_MAX_TOKENS = 4096;

export interface Model extends z.infer<typeof ModelSchema> {
  default_max_tokens: number;
  /** micro-CAD per million tokens; cache classes fall back to the input price when the catalog names none. */
  prices: Prices;
  /** What the gateway bills per million tokens for a request on the customer's own credential (BYOK): the routing-only fee. */
  byok_fee_prices: Prices;
  /** Routes the gateway can serve, in preference order. */
  served: Route[];
  /** Routes whose provider this deployment has not configured, and what is missing (configureCatalog). */
  unconfigured: { route: Route; missing: string }[];
  /** Derived from the served routes, never typed in the data. */
  tiers: Tier[];
  jurisdictions: Jurisdiction[];
}

export interface Catalog {
  models: Model[];
  byId: ReadonlyMap<string, Model>;
  /** The OpenAI-compatible endpoints routes name, by name. */
  endpoints: Readonly<Record<string, Endpoint>>;
  /** The BYOK routing-only fee, in basis points of the list price. */
  byokRoutingFeeBps: number;
}

/** Each price scaled to a fraction in basis points, rounded up to whole micro-CAD per million tokens. */
const scaled = (p: Prices, bps: number): Prices => ({
  input: Math.ceil((p.input * bps) / 10_000),
  output: Math.ceil((p.output * bps) / 10_000),
  cache_read: Math.ceil((p.cache_read * bps) / 10_000),
  cache_write: Math.ceil((p.cache_write * bps) / 10_000),
});

export class CatalogError extends Error {}

function describeIssue(raw: unknown, issue: z.core.$ZodIssue): string {
  const [head, index] = issue.path;
  const entry = head === 'models' && typeof index === 'number' ? (raw as { models: { id?: unknown }[] }).models[index] : undefined;
  const where = entry ? `model ${JSON.stringify(entry.id ?? `#${String(index)}`)}` : 'catalog';
  return `${where}: ${issue.path.map(String).join('.')}: ${issue.message}`;
}

/**
 * Validates catalog data; a broken entry throws a CatalogError naming it. Routes to providers outside `served`
 * (those the gateway has no client for) are kept in the data but not served.
 */
export function buildCatalog(raw: unknown, served: ReadonlySet<string>): Catalog {
  const parsed = CatalogFileSchema.safeParse(raw);
  if (!parsed.success) throw new CatalogError(`Invalid catalog: ${parsed.error.issues.map((i) => describeIssue(raw, i)).join('; ')}`);
  const models: Model[] = [];
  const byId = new Map<string, Model>();
  for (const m of parsed.data.models) {
    if (byId.has(m.id)) throw new CatalogError(`Invalid catalog: model "${m.id}" appears twice`);
    const unknown = m.routes.find((r) => r.endpoint !== undefined && !(r.endpoint in parsed.data.endpoints));
    if (unknown) throw new CatalogError(`Invalid catalog: model "${m.id}": route endpoint "${unknown.endpoint}" is not declared in endpoints`);
    const input = parseCad(m.pricing.input_per_mtok);
    const prices: Prices = {
      input,
      output: parseCad(m.pricing.output_per_mtok),
      cache_read: m.pricing.cache_read_per_mtok ? parseCad(m.pricing.cache_read_per_mtok) : input,
      cache_write: m.pricing.cache_write_per_mtok ? parseCad(m.pricing.cache_write_per_mtok) : input,
    };
    const model: Model = withServed({
      ...m,
      default_max_tokens: m.default_max_tokens ?? Math.min(FALLBACK_DEFAULT_MAX_TOKENS, m.max_output_tokens),
      prices,
      byok_fee_prices: scaled(prices, parsed.data.byok_routing_fee_bps),
      unconfigured: [],
    }, m.routes.filter((r) => served.has(r.provider)));
    byId.set(m.id, model);
    if (model.served.length > 0) models.push(model);
  }
  return { models, byId, endpoints: parsed.data.endpoints, byokRoutingFeeBps: parsed.data.byok_routing_fee_bps };
}

/** A model serving `routes`: its tiers and jurisdictions follow from them. */
function withServed(m: Omit<Model, 'served' | 'tiers' | 'jurisdictions'>, routes: Route[]): Model {
  return {
    ...m,
    served: routes,
    tiers: TIERS.filter((t) => routes.some((r) => tierAllows(t, r))),
    jurisdictions: [...new Set(routes.map((r) => r.jurisdiction))],
  };
}

/**
 * The catalog as one deployment serves it: a route whose provider is not configured here (`missing` says what is
 * missing, or undefined when nothing is) is neither served nor advertised, so a tier's requests go to the routes
 * that can answer, and a model left with none in a tier is refused naming what the operator has to configure.
 */
export function configureCatalog(c: Catalog, missing: (route: Route) => string | undefined): Catalog {
  const byId = new Map<string, Model>();
  for (const m of c.byId.values()) {
    const unconfigured = m.served.flatMap((route) => {
      const what = missing(route);
      return what === undefined ? [] : [{ route, missing: what }];
    });
    byId.set(m.id, withServed({ ...m, unconfigured: [...m.unconfigured, ...unconfigured] }, m.served.filter((r) => !unconfigured.some((u) => u.route === r))));
  }
  return { ...c, models: [...byId.values()].filter((m) => m.served.length > 0), byId };
}

export const modelsForTier = (c: Catalog, tier: Tier) => c.models.filter((m) => m.tiers.includes(tier));

export interface Resolution {
  model: Model;
  /** Routes the request may use, all in the jurisdiction of the first: a retry or fallback never widens it. */
  routes: Route[];
}

/**
 * The models a key can call under a tier when that is more than the deployment serves in it (a key with its own
 * provider credentials: modelsForKey in core/byok.ts), asked only when an error lists them.
 */
export type KeyModels = () => readonly Model[];

/**
 * Model id + tier → the routes a request may take, or the error the client sees; the error lists the models the
 * deployment serves (in the tier), and those `keyModels` adds.
 */
export function resolveModel(c: Catalog, modelId: string, tier: Tier, keyModels?: KeyModels): Resolution {
  const model = c.byId.get(modelId);
  const unconfigured = model?.unconfigured.filter((u) => tierAllows(tier, u.route)) ?? [];
  if (model && unconfigured.length > 0 && !model.served.some((r) => tierAllows(tier, r))) {
    // The catalog has routes for this tier, but this deployment has not configured their providers.
    const available = (keyModels?.() ?? modelsForTier(c, tier)).map((m) => m.id);
    const what = [...new Set(unconfigured.map((u) => u.missing))].join('; ');
    throw new GatewayError(400,
      `Model '${modelId}' is not available in privacy tier '${tier}' on this gateway: its routes in that tier are not configured (${what}). ` +
        `Models available in '${tier}': ${available.length ? available.join(', ') : 'none'}`,
      'invalid_request_error', 'model_not_available_in_tier', 'model', { privacy_tier: tier, available_models: available });
  }
  if (!model || model.served.length === 0) {
    const own = keyModels?.() ?? [];
    const available = [...c.byId.values()].filter((m) => m.served.length > 0 || own.includes(m)).map((m) => m.id);
    throw new GatewayError(400, `Model '${modelId}' is not deployed. Available models: ${available.join(', ')}`,
      'invalid_request_error', 'model_not_found', 'model', { available_models: available });
  }
  const allowed = model.served.filter((r) => tierAllows(tier, r));
  if (allowed.length === 0) {
    const available = (keyModels?.() ?? modelsForTier(c, tier)).map((m) => m.id);
    throw new GatewayError(400,
      `Model '${modelId}' is not available in privacy tier '${tier}' (it serves: ${model.tiers.join(', ')}). ` +
        `Models available in '${tier}': ${available.length ? available.join(', ') : 'none'}`,
      'invalid_request_error', 'model_not_available_in_tier', 'model', { privacy_tier: tier, available_models: available });
  }
  const first = allowed[0].jurisdiction;
  return { model, routes: allowed.filter((r) => r.jurisdiction === first) };
}

/**
 * A request that needs tools or images the model does not take is refused before anything goes upstream, with
 * the models of the tier that do, of those the key can call (the provider would refuse it too, less clearly, after the admission).
 */
export function assertCapable(c: Catalog, model: Model, tier: Tier, needs: { tools: boolean; images: boolean }, keyModels?: KeyModels): void {
  const missing = needs.tools && !model.capabilities.tools ? 'tools' : needs.images && !model.capabilities.vision ? 'images' : null;
  if (!missing) return;
  const capable = (keyModels?.() ?? modelsForTier(c, tier)).filter((m) => (missing === 'tools' ? m.capabilities.tools : m.capabilities.vision)).map((m) => m.id);
  throw new GatewayError(400, `Model '${model.id}' does not support ${missing}. Models in privacy tier '${tier}' that do: ${capable.length ? capable.join(', ') : 'none'}`,
    'invalid_request_error', `model_does_not_support_${missing}`, missing === 'tools' ? 'tools' : 'messages', { available_models: capable });
}
