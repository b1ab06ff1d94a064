import * as z from 'zod';
import { catalog } from '../catalog';
import {
  azureResidency, byokRoutesOf, ByokProvider, ByokSetInput, fingerprintOf, maskedSecret, type ByokEntry,
} from '../core/byok';
import { GatewayError } from '../core/errors';
import type { KeyRecord } from '../core/keys';
import { tierAllows, type Jurisdiction } from '../core/tiers';
import { byokLastUsed } from '../store/byok-credentials';
import { sealSecret } from '../store/byok-keyring';
import { getById, updateByok } from '../store/keys';

/**
 * Attaching, inspecting and detaching a customer's own provider credentials (BYOK) on an NI key: the operations
 * `ni keys byok` and the portal's API both call. Inputs are validated with the zod schemas here; failures are
 * GatewayErrors (OpenAI's error shape, an HTTP status) whose messages never hold the secret.
 */
export { ByokSetInput };

/** What may be shown about one credential: never the secret, its envelope or more than its last 4 characters. */
export interface ByokView {
  provider: ByokProvider;
  /** `…` and the secret's last 4 characters. */
  masked: string;
  fingerprint: string;
  set_at: string;
  /** When a request last used it (to the minute), null if none has yet. */
  last_used_at: string | null;
  allow_fallback: boolean;
  /** The catalog models it serves, with where each route processes. */
  routes: { model: string; region: string; upstream_id: string; jurisdiction: Jurisdiction }[];
  endpoint?: string;
  deployments?: Record<string, string>;
  deployment_type?: string;
}

const notFound = (keyId: string) => new GatewayError(404, `No API key '${keyId}'.`, 'not_found_error', 'key_not_found', 'key_id');

async function activeKey(keyId: string): Promise<KeyRecord> {
  const record = await getById(keyId);
  if (!record) throw notFound(keyId);
  if (record.revoked_at) throw new GatewayError(409, `API key '${keyId}' is revoked.`, 'invalid_request_error', 'key_revoked', 'key_id');
  return record;
}

function invalid(err: z.ZodError): GatewayError {
  const issue = err.issues[0];
  // The secret's own value is never echoed: zod's messages here name rules, not input.
  return new GatewayError(400, err.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; '), 'invalid_request_error', 'invalid_byok_settings', issue?.path.join('.') || null);
}

/**
 * The routes a credential would serve, and a refusal when none is usable under any tier the key allows (an Azure
 * endpoint whose region cannot be established is not Canadian, so a key limited to Canadian tiers cannot use it).
 */
function usableRoutes(record: KeyRecord, provider: ByokProvider, entry: Pick<ByokEntry, 'endpoint' | 'deployments' | 'deployment_type'>): ByokView['routes'] {
  const c = catalog();
  if (entry.deployments) {
    const unknown = Object.keys(entry.deployments).filter((m) => !c.byId.get(m)?.served.length);
    if (unknown.length) throw new GatewayError(400, `Not models the gateway serves: ${unknown.join(', ')}.`, 'invalid_request_error', 'invalid_byok_settings', 'deployments');
  }
  const routes = c.models.flatMap((m) => byokRoutesOf(m, provider, entry).map((r) => ({ model: m.id, route: r })));
  const usable = routes.filter(({ route }) => record.allowed_tiers.some((t) => tierAllows(t, route)));
  if (!usable.length) {
    const where = provider === 'azure_openai' && entry.endpoint && entry.deployment_type
      ? `its deployments process in ${azureResidency(entry.endpoint, entry.deployment_type).jurisdiction} (a Canadian region is established only by Azure's regional endpoint https://<region>.api.cognitive.microsoft.com, with standard or provisioned deployments)`
      : `its routes process in ${[...new Set(routes.map(({ route }) => route.jurisdiction))].join(', ') || 'no catalog model'}`;
    throw new GatewayError(400, `This ${provider} credential could never be used by API key '${record.id}', which allows only ${record.allowed_tiers.join(', ')}: ${where}.`,
      'invalid_request_error', 'byok_not_usable_in_tiers', provider === 'azure_openai' ? 'endpoint' : 'provider');
  }
  return usable.map(({ model, route }) => ({ model, region: route.region, upstream_id: route.upstream_id, jurisdiction: route.jurisdiction }));
}

function view(provider: ByokProvider, entry: ByokEntry, lastUsed: { fingerprint: string; last_used_at: string } | undefined): ByokView {
  const c = catalog();
  return {
    provider,
    masked: maskedSecret(entry.last4),
    fingerprint: entry.fingerprint,
    set_at: entry.set_at,
    last_used_at: lastUsed?.fingerprint === entry.fingerprint ? lastUsed.last_used_at : null,
    allow_fallback: entry.allow_fallback,
    routes: c.models.flatMap((m) => byokRoutesOf(m, provider, entry).map((r) => ({ model: m.id, region: r.region, upstream_id: r.upstream_id, jurisdiction: r.jurisdiction }))),
    ...(entry.endpoint && { endpoint: entry.endpoint }),
    ...(entry.deployments && { deployments: entry.deployments }),
    ...(entry.deployment_type && { deployment_type: entry.deployment_type }),
  };
}

/**
 * Sets (or replaces: rotation) a key's credential for a provider. Requests use it once the key caches expire
 * (DEFAULT_KEY_CACHE_TTL_MS locally; plus API Gateway's authorizer cache in AWS).
 */
export async function setByok(keyId: string, input: ByokSetInput, now = new Date()): Promise<ByokView> {
  const parsed = ByokSetInput.safeParse(input);
  if (!parsed.success) throw invalid(parsed.error);
  const { provider, secret, allow_fallback, endpoint, deployments, deployment_type } = parsed.data;
  const record = await activeKey(keyId);
  const azure = { ...(endpoint && { endpoint }), ...(deployments && { deployments }), ...(deployment_type && { deployment_type }) };
  usableRoutes(record, provider, azure);
  const entry: ByokEntry = {
    envelope: await sealSecret(record.id, provider, secret),
    fingerprint: fingerprintOf(secret),
    last4: secret.slice(-4),
    set_at: now.toISOString(),
    allow_fallback,
    ...azure,
  };
  if (!(await updateByok(record.id, provider, entry))) throw notFound(keyId);
  return view(provider, entry, undefined);
}

/** The key's credentials, one view per provider (an empty list: none). */
export async function showByok(keyId: string): Promise<ByokView[]> {
  const record = await getById(keyId);
  if (!record) throw notFound(keyId);
  const lastUsed = await byokLastUsed(record.id);
  return ByokProvider.options.flatMap((p) => {
    const entry = record.byok?.[p];
    return entry ? [view(p, entry, lastUsed[p])] : [];
  });
}

/** Removes the key's credential for `provider` (every provider when none is named); returns the providers removed. */
export async function clearByok(keyId: string, provider?: ByokProvider): Promise<ByokProvider[]> {
  const record = await getById(keyId);
  if (!record) throw notFound(keyId);
  const present = ByokProvider.options.filter((p) => record.byok?.[p] && (provider === undefined || p === provider));
  for (const p of present) await updateByok(record.id, p, null);
  return present;
}
