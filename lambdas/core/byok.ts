import { createHash } from 'node:crypto';
import * as z from 'zod';
import { modelsForTier, type Catalog, type Model, type Route } from './catalog';
import { GatewayError } from './errors';
import { tierAllows, type Jurisdiction, type Tier } from './tiers';

/**
 * Bring your own key (BYOK): a customer's own credential for a provider, attached to one NI key. The secret is kept
 * only as an envelope (encrypted with a data key that a KMS key dedicated to BYOK wraps, under the encryption context
 * {ni_key_id, provider}); this module holds what is pure about it: the shapes, the routes a credential serves and the
 * residency those routes have.
 */
export const BYOK_PROVIDERS = ['openai', 'anthropic', 'azure_openai'] as const;
export const ByokProvider = z.enum(BYOK_PROVIDERS);
export type ByokProvider = z.infer<typeof ByokProvider>;

/** Azure OpenAI's regions in Canada: a Standard (regional) deployment there processes in Canada. */
export const AZURE_CANADIAN_REGIONS: readonly string[] = ['canadaeast', 'canadacentral'];

/**
 * How an Azure deployment processes: `standard` and `provisioned` (regional) in the resource's region;
 * `global_standard` and `data_zone` wherever Azure chooses (there is no Canada data zone).
 */
export const AzureDeploymentType = z.enum(['standard', 'provisioned', 'global_standard', 'data_zone']);
export type AzureDeploymentType = z.infer<typeof AzureDeploymentType>;
const REGIONAL: ReadonlySet<AzureDeploymentType> = new Set(['standard', 'provisioned']);

const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');

/** The secret, sealed: AES-256-GCM under a data key, the data key wrapped by the BYOK key (`kek` names it). */
export const Envelope = z.object({
  kek: z.string().min(1),
  wrapped_key: Base64.min(1),
  iv: Base64.min(1),
  ciphertext: Base64.min(1),
  tag: Base64.min(1),
});
export type Envelope = z.infer<typeof Envelope>;

const ModelId = z.string().regex(/^[a-z0-9_-]+\/[a-z0-9._-]+$/, 'an NI model id like "openai/gpt-4o"');
/** Azure deployment names: letters, digits, `-`, `_`, `.` (Azure's own rule is narrower). */
const DeploymentName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'an Azure deployment name');

/** What the gateway needs to call with the credential: carried from the key record to the request (authorizer context). */
export const ByokCredential = z.object({
  envelope: Envelope,
  /** `sha256:` + 16 hex of the secret's SHA-256: tells credentials apart without revealing them. */
  fingerprint: z.string().regex(/^sha256:[0-9a-f]{16}$/),
  /** true: when the provider refuses this credential, the operator's credential may serve instead (and says so). */
  allow_fallback: z.boolean(),
  /** Azure only: the customer's resource, the NI models it serves (model id → deployment) and their deployment type. */
  endpoint: z.url().optional(),
  deployments: z.record(ModelId, DeploymentName).optional(),
  deployment_type: AzureDeploymentType.optional(),
});
export type ByokCredential = z.infer<typeof ByokCredential>;

/** The key record's BYOK entry for one provider: the credential plus what `ni keys byok show` prints. */
export const ByokEntry = ByokCredential.extend({
  /** The secret's last 4 characters: enough to recognise it, never to use it. */
  last4: z.string().max(4),
  set_at: z.iso.datetime(),
});
export type ByokEntry = z.infer<typeof ByokEntry>;

export const ByokEntries = z.partialRecord(ByokProvider, ByokEntry);
export type ByokEntries = z.infer<typeof ByokEntries>;
export const ByokCredentials = z.partialRecord(ByokProvider, ByokCredential);
export type ByokCredentials = z.infer<typeof ByokCredentials>;

/**
 * Setting a credential (the CLI and the portal's API take this). The secret: one line of printable characters
 * (a pasted key's line end is trimmed), which is what every provider issues.
 */
export const ByokSetInput = z.object({
  provider: ByokProvider,
  secret: z.string().trim().min(8, 'the credential is too short').max(4096).regex(/^[\x21-\x7e]+$/, 'the credential must be one line of printable characters'),
  endpoint: z.url().refine((u) => u.startsWith('https://') || /^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(u), 'the endpoint must be https').optional(),
  deployments: z.record(ModelId, DeploymentName).optional(),
  deployment_type: AzureDeploymentType.optional(),
  allow_fallback: z.boolean().default(false),
}).superRefine((v, ctx) => {
  const azure = v.provider === 'azure_openai';
  if (azure) {
    if (!v.endpoint) ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'Azure OpenAI needs the resource endpoint, e.g. https://canadaeast.api.cognitive.microsoft.com' });
    if (!v.deployments || Object.keys(v.deployments).length === 0) ctx.addIssue({ code: 'custom', path: ['deployments'], message: 'Azure OpenAI needs at least one deployment (model id = deployment name)' });
    if (!v.deployment_type) ctx.addIssue({ code: 'custom', path: ['deployment_type'], message: `Azure OpenAI needs the deployments' type: ${AzureDeploymentType.options.join(', ')}` });
  } else {
    for (const f of ['endpoint', 'deployments', 'deployment_type'] as const) {
      if (v[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `only Azure OpenAI takes ${f}` });
    }
  }
});
export type ByokSetInput = z.input<typeof ByokSetInput>;

/** The encryption context binding an envelope to its key and provider (KMS refuses to unwrap it under any other). */
export const encryptionContext = (keyId: string, provider: ByokProvider) => ({ ni_key_id: keyId, provider });

export const fingerprintOf = (secret: string) => `sha256:${createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 16)}`;
export const maskedSecret = (last4: string) => `…${last4}`;

/**
 * The Azure region an endpoint establishes, or null. Only Azure's regional host `https://<region>.api.cognitive.microsoft.com`
 * names its region; a resource's own subdomain (`https://<name>.openai.azure.com`) is a name its owner chose, which
 * says nothing about where it runs.
 */
export function azureRegionOf(endpoint: string): string | null {
  const m = /^([a-z0-9]+)\.api\.cognitive\.microsoft\.com$/.exec(new URL(endpoint).hostname);
  return m ? m[1] : null;
}

/** Where a customer's Azure deployments process, from what can be established: the endpoint's region and their type. */
export function azureResidency(endpoint: string, type: AzureDeploymentType): { region: string; jurisdiction: Jurisdiction } {
  const region = azureRegionOf(endpoint);
  if (!REGIONAL.has(type)) return { region: 'global', jurisdiction: 'GLOBAL' };
  if (region === null) return { region: 'unknown', jurisdiction: 'GLOBAL' };
  if (AZURE_CANADIAN_REGIONS.includes(region)) return { region, jurisdiction: 'CA' };
  return { region, jurisdiction: /us\d?$/.test(region) ? 'US' : 'GLOBAL' };
}

/**
 * The routes a customer credential serves for a model: for OpenAI and Anthropic the catalog's routes on that provider
 * (their region, jurisdiction and upstream id), served by the operator's credential or not; for Azure one route per deployment the customer mapped to the model,
 * on their resource, labelled from what can be established about it (azureResidency).
 */
export function byokRoutesOf(model: Model, provider: ByokProvider, c: Pick<ByokCredential, 'endpoint' | 'deployments' | 'deployment_type'>): Route[] {
  // The operator's own configuration of the provider does not matter here: the customer's credential serves these routes.
  if (provider !== 'azure_openai') return [...model.served, ...model.unconfigured.map((u) => u.route)].filter((r) => r.provider === provider);
  const deployment = c.deployments?.[model.id];
  if (!deployment || !c.endpoint || !c.deployment_type) return [];
  const { region, jurisdiction } = azureResidency(c.endpoint, c.deployment_type);
  return [{ provider, region, upstream_id: deployment, jurisdiction, canadian_controlled: false, verified: false }];
}

/** A customer credential's routes for a request: in the first allowed route's jurisdiction, as for any request. */
export interface ByokPlan {
  provider: ByokProvider;
  credential: ByokCredential;
  routes: Route[];
}

/**
 * Which of the key's credentials serves this model under this tier, if any: the first provider (in BYOK_PROVIDERS
 * order) with a route the tier allows. None: the request is served like any other key's, on the operator's routes.
 * A model with no route on a provider the gateway serves (configured here or not) is served by none.
 */
export function byokPlan(model: Model, tier: Tier, credentials: ByokCredentials | undefined): ByokPlan | null {
  if (!credentials || (model.served.length === 0 && model.unconfigured.length === 0)) return null;
  for (const provider of BYOK_PROVIDERS) {
    const credential = credentials[provider];
    if (!credential) continue;
    const allowed = byokRoutesOf(model, provider, credential).filter((r) => tierAllows(tier, r));
    if (allowed.length) return { provider, credential, routes: allowed.filter((r) => r.jurisdiction === allowed[0].jurisdiction) };
  }
  return null;
}

/**
 * The models a key can call under a tier, in catalog order: those the deployment serves in it, and those the key's
 * own credentials serve in it (byokPlan), which may be on providers the deployment has not configured.
 */
export function modelsForKey(c: Catalog, tier: Tier, credentials: ByokCredentials | undefined): Model[] {
  if (!credentials) return modelsForTier(c, tier);
  return [...c.byId.values()].filter((m) => m.tiers.includes(tier) || byokPlan(m, tier, credentials) !== null);
}

/** Provider statuses that are the customer's account answering about their credential: never retried, never replaced. */
export const CUSTOMER_ACCOUNT_STATUSES: ReadonlySet<number> = new Set([401, 402, 403, 404, 429]);

/**
 * The provider refused, rate-limited or found out of quota the customer's own credential. The request is not retried
 * on the operator's credential (unless the key allows fallback); the message names the provider's answer, never the
 * credential or the provider's words (which may quote part of it).
 */
export function byokProviderError(provider: ByokProvider, status: number, code: string | undefined): GatewayError {
  const what = status === 429 ? 'rate-limited or out of quota' : status === 404 ? 'answered not found (check the deployment)' : 'refused';
  return new GatewayError(status === 429 ? 429 : 424,
    `Your own ${provider} credential on this API key was ${what} by ${provider} (HTTP ${status}${code ? `, ${code}` : ''}). ` +
      "The request was not sent with the gateway's credential.",
    status === 429 ? 'rate_limit_error' : 'invalid_request_error', 'byok_provider_error', null,
    { provider, provider_status: status, ...(code ? { provider_code: code } : {}) },
    status === 429 ? { 'x-should-retry': 'false' } : {});
}

