import type { Catalog, Endpoint, Route } from '../core/catalog';
import { createAnthropicProvider } from './anthropic';
import { createBedrockProvider } from './bedrock';
import { createAzureOpenAIProvider, createOpenAICompatibleProvider, createOpenAIProvider, endpointSecretName } from './openai-compatible';
import { createVertexProvider } from './vertex-ai';
import type { WorkloadIdentity } from './vertex-ai/federation';
import type { SecretSource } from '../secrets';
import type { ProviderName } from './names';
import type { Provider } from './provider';

/** Where each provider is reached (an override per provider, else its own) and where its credentials are. */
export interface ProviderSettings {
  endpoints: Partial<Record<ProviderName, string>>;
  /** The regions of the Bedrock routes served: their clients are made when the providers are. */
  bedrockRegions?: readonly string[];
  /** Vertex AI's Google Cloud project, when the service-account key names none (or another). */
  vertexProject?: string;
  /** Vertex AI's credentials by workload identity federation from the function's AWS role, instead of a key. */
  vertexWorkloadIdentity?: WorkloadIdentity;
  secrets: SecretSource;
  /** The catalog's OpenAI-compatible endpoints, their base URLs overridden where configured. */
  openaiCompatible: Readonly<Record<string, Endpoint>>;
}

const FACTORIES: Record<ProviderName, (s: ProviderSettings) => Provider> = {
  bedrock: (s) => createBedrockProvider({ endpoint: s.endpoints.bedrock, regions: s.bedrockRegions }),
  azure_openai: (s) => createAzureOpenAIProvider({ endpoint: s.endpoints.azure_openai, secrets: s.secrets }),
  openai: (s) => createOpenAIProvider({ baseUrl: s.endpoints.openai, secrets: s.secrets }),
  openai_compatible: (s) => createOpenAICompatibleProvider({ endpoints: s.openaiCompatible, secrets: s.secrets }),
  vertex_ai: (s) => createVertexProvider({ endpoint: s.endpoints.vertex_ai, project: s.vertexProject, workloadIdentity: s.vertexWorkloadIdentity, secrets: s.secrets }),
  anthropic: (s) => createAnthropicProvider({ baseUrl: s.endpoints.anthropic, secrets: s.secrets }),
};

export type ProviderRegistry = ReadonlyMap<string, Provider>;

export function createProviders(settings: ProviderSettings): ProviderRegistry {
  return new Map(Object.entries(FACTORIES).map(([name, create]) => [name, create(settings)]));
}

/** Where the deployment reaches the providers whose routes are served only with an address configured. */
export type ServedBy = Pick<ProviderSettings, 'endpoints' | 'openaiCompatible'>;

/** The secret (as `secrets.get` names it) a route's calls need; Bedrock's calls are signed by the function's role. */
const CREDENTIALS: Partial<Record<ProviderName, (route: Route, s: ServedBy) => string | undefined>> = {
  // Without the operator's resource, Azure's routes are not served (a customer's own Azure credential names its own).
  azure_openai: (_, s) => (s.endpoints.azure_openai ? 'azure_openai' : undefined),
  openai: () => 'openai',
  // An endpoint without a base URL is not served, so its routes need no credential.
  openai_compatible: (route, s) => {
    const endpoint = route.endpoint === undefined ? undefined : s.openaiCompatible[route.endpoint];
    return endpoint?.base_url && endpoint.secret ? endpointSecretName(route.endpoint!) : undefined;
  },
  vertex_ai: () => 'vertex_ai',
  anthropic: () => 'anthropic',
};

const SECRET_SETTING = 'in Secrets Manager (NI_PROVIDER_SECRET_ARNS) or NI_PROVIDER_SECRETS_FILE';

/**
 * What this deployment lacks to serve `route`, or undefined: the settings a provider needs before a call can
 * succeed, as the operator names them (environment variable and the stack's context). A credential is checked
 * for being configured, not for its value: a placeholder is refused by the provider when used.
 */
export function missingConfiguration(s: ProviderSettings): (route: Route) => string | undefined {
  const secret = (name: string) => (s.secrets.has(name) ? undefined : `no ${name} credential ${SECRET_SETTING}`);
  const checks: Record<ProviderName, (route: Route) => string | undefined> = {
    bedrock: () => undefined, // signed by the function's own role
    azure_openai: () => (s.endpoints.azure_openai ? secret('azure_openai') : 'no Azure OpenAI resource (NI_AZURE_OPENAI_ENDPOINT, the stack\'s azureOpenAIEndpoint context)'),
    openai: () => secret('openai'),
    anthropic: () => secret('anthropic'),
    vertex_ai: () => {
      if (!s.vertexWorkloadIdentity) return secret('vertex_ai');
      return s.vertexProject ? undefined : 'no Google Cloud project for workload identity federation (NI_VERTEX_PROJECT_ID, the stack\'s vertexProjectId context)';
    },
    openai_compatible: (route) => {
      const endpoint = route.endpoint === undefined ? undefined : s.openaiCompatible[route.endpoint];
      if (!endpoint?.base_url) return `no base URL for the OpenAI-compatible endpoint ${route.endpoint} (NI_OPENAI_COMPATIBLE_BASE_URLS, the stack's openaiCompatibleBaseUrls context)`;
      return endpoint.secret ? secret(endpointSecretName(route.endpoint!)) : undefined;
    },
  };
  return (route) => checks[route.provider as ProviderName]?.(route);
}

/**
 * Every credential the catalog's served routes need, once each (the stack creates a secret for each), with the
 * providers' addresses as the deployment configures them: its Azure OpenAI resource, its OpenAI-compatible
 * endpoints' base URLs (withBaseUrls).
 */
export function credentialsNeeded(c: Catalog, servedBy: ServedBy): string[] {
  const names = c.models.flatMap((m) => m.served.map((r) => CREDENTIALS[r.provider as ProviderName]?.(r, servedBy)));
  return [...new Set(names.filter((n): n is string => n !== undefined))].sort();
}
