import type { Endpoint, Route } from '../../core/catalog';
import type { SecretSource } from '../../secrets';
import * as z from 'zod';
import { getJson } from '../http';
import { UpstreamError, type Provider } from '../provider';
import { createChatCompletionsProvider } from './client';

/*
 * The three providers that speak OpenAI chat completions. They differ only in where a route's request goes and
 * how it is authenticated; the mapping and the client are shared.
 */

/** Azure OpenAI's generally available data-plane inference API version. */
export const AZURE_API_VERSION = '2024-10-21';
export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

const trimSlash = (url: string) => url.replace(/\/+$/, '');

/** The credential a provider needs; without one the route is not enabled (nothing is sent anywhere). */
async function credential(secrets: SecretSource, name: string): Promise<string> {
  // A key pasted with its line end would make an invalid header, which fetch refuses before sending.
  const value = (await secrets.get(name))?.trim();
  if (!value) throw new UpstreamError('not_enabled');
  return value;
}

/**
 * Azure OpenAI: the route's upstream id is the deployment's name, on the operator's resource `endpoint`
 * (e.g. `https://my-resource.openai.azure.com`, a resource in the route's region), authenticated by `api-key`.
 */
export function createAzureOpenAIProvider(s: { endpoint?: string; secrets: SecretSource }): Provider {
  return createChatCompletionsProvider({
    maxTokensField: 'max_tokens',
    async target(route, customer) {
      const endpoint = customer?.endpoint ?? s.endpoint;
      if (!endpoint) throw new UpstreamError('not_enabled');
      const url = `${trimSlash(endpoint)}/openai/deployments/${encodeURIComponent(route.upstream_id)}/chat/completions?api-version=${AZURE_API_VERSION}`;
      return { url, headers: { 'api-key': customer?.secret ?? await credential(s.secrets, 'azure_openai') } };
    },
    custodyHops: (route) => [`azure-openai@${route.region}#${route.upstream_id}`],
  });
}

/**
 * The data-plane API version that still lists a resource's deployments with its key (later versions dropped the
 * listing for the management plane, which needs an Entra ID token instead of the key the gateway holds).
 */
export const AZURE_DEPLOYMENTS_API_VERSION = '2022-12-01';

/**
 * A deployment as `ni catalog check` compares it with a route. `sku` (Standard, GlobalStandard, DataZoneStandard,
 * ProvisionedManaged…) says where it may process, and only the management plane shows it.
 */
export interface AzureDeployment {
  name: string;
  model: string;
  /** succeeded (data plane) or Succeeded (management plane) when usable. */
  state: string;
  sku?: string;
}

export interface AzureResourceListing {
  deployments: AzureDeployment[];
  /** The resource's Azure region (management plane only). */
  location?: string;
}

const DataPlaneDeployments = z.object({ data: z.array(z.object({ id: z.string(), model: z.string(), status: z.string() })) });

/** The deployments of the Azure OpenAI resource at `endpoint`, listed with its key (the data plane). */
export async function listAzureDeployments(endpoint: string, secrets: SecretSource): Promise<AzureResourceListing> {
  const { status, body } = await getJson(`${trimSlash(endpoint)}/openai/deployments?api-version=${AZURE_DEPLOYMENTS_API_VERSION}`, { 'api-key': await credential(secrets, 'azure_openai') });
  const parsed = DataPlaneDeployments.safeParse(body);
  if (status !== 200 || !parsed.success) throw new Error(`Azure OpenAI answered the deployments listing with HTTP ${status}${parsed.success ? '' : ' and no deployment list'}`);
  return { deployments: parsed.data.data.map((d) => ({ name: d.id, model: d.model, state: d.status })) };
}

/** Azure Resource Manager's Cognitive Services API version for accounts and deployments. */
export const AZURE_MANAGEMENT_API_VERSION = '2023-05-01';
const ManagedAccount = z.object({ location: z.string() });
const ManagedDeployments = z.object({
  value: z.array(z.object({
    name: z.string(),
    sku: z.object({ name: z.string() }),
    properties: z.object({ model: z.object({ name: z.string(), version: z.string().optional() }), provisioningState: z.string() }),
  })),
});

/**
 * The resource's region and deployments with their SKUs, from the management plane: `resourceId` is the account's
 * ARM id (`/subscriptions/…/resourceGroups/…/providers/Microsoft.CognitiveServices/accounts/…`), `token` an Entra ID
 * token for Azure Resource Manager (the resource key does not open the management plane).
 */
export async function listAzureDeploymentsManaged(managementEndpoint: string, resourceId: string, token: string): Promise<AzureResourceListing> {
  const base = `${trimSlash(managementEndpoint)}${resourceId}`;
  const headers = { authorization: `Bearer ${token}` };
  const account = await getJson(`${base}?api-version=${AZURE_MANAGEMENT_API_VERSION}`, headers);
  const deployments = await getJson(`${base}/deployments?api-version=${AZURE_MANAGEMENT_API_VERSION}`, headers);
  const a = ManagedAccount.safeParse(account.body);
  const d = ManagedDeployments.safeParse(deployments.body);
  if (account.status !== 200 || !a.success) throw new Error(`Azure Resource Manager answered HTTP ${account.status} for the resource ${resourceId}`);
  if (deployments.status !== 200 || !d.success) throw new Error(`Azure Resource Manager answered HTTP ${deployments.status} for the deployments of ${resourceId}`);
  return {
    location: a.data.location,
    deployments: d.data.value.map((x) => ({ name: x.name, model: `${x.properties.model.name}${x.properties.model.version ? ` ${x.properties.model.version}` : ''}`, state: x.properties.provisioningState, sku: x.sku.name })),
  };
}

/** OpenAI's own API (processing in OpenAI's infrastructure, in the US by default). */
export function createOpenAIProvider(s: { baseUrl?: string; secrets: SecretSource }): Provider {
  return createChatCompletionsProvider({
    maxTokensField: 'max_completion_tokens',
    async target(_route, customer) {
      return { url: `${trimSlash(s.baseUrl ?? OPENAI_BASE_URL)}/chat/completions`, headers: { authorization: `Bearer ${customer?.secret ?? await credential(s.secrets, 'openai')}` } };
    },
    custodyHops: (route) => [`openai@${route.region}#${route.upstream_id}`],
  });
}

/** The secret name of an OpenAI-compatible endpoint's credential. */
export const endpointSecretName = (endpoint: string) => `openai_compatible:${endpoint}`;

/** OpenAI-compatible servers declared in the catalog's `endpoints`; each route names its endpoint. */
export function createOpenAICompatibleProvider(s: { endpoints: Readonly<Record<string, Endpoint>>; secrets: SecretSource }): Provider {
  const endpointOf = (route: Route) => {
    const endpoint = route.endpoint === undefined ? undefined : s.endpoints[route.endpoint];
    if (!endpoint?.base_url) throw new UpstreamError('not_enabled');
    return { name: route.endpoint!, ...endpoint, base_url: endpoint.base_url };
  };
  return createChatCompletionsProvider({
    maxTokensField: 'max_tokens',
    async target(route) {
      const endpoint = endpointOf(route);
      const headers: Record<string, string> = endpoint.secret ? { authorization: `Bearer ${await credential(s.secrets, endpointSecretName(endpoint.name))}` } : {};
      return { url: `${trimSlash(endpoint.base_url)}/chat/completions`, headers };
    },
    custodyHops: (route) => [`${route.endpoint ?? 'openai-compatible'}@${route.region}#${route.upstream_id}`],
  });
}
