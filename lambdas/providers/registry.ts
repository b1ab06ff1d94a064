import type { Catalog, Endpoint, Route } from '../core/catalog';
import { createAnthropicProvider } from './anthropic';
import { createBedrockProvider } from './bedrock';
import { createAzureOpenAIProvider, createOpenAICompatibleProvider, createOpenAIProvider, endpointSecretName } from './openai-compatible';
import { createVertexProvider } from './vertex-ai';
import type { SecretSource } from '../secrets';
import type { ProviderName } from './names';
import type { Provider } from './provider';

/** Where each provider is reached (an override per provider, else its own) and where its credentials are. */
export interface ProviderSettings {
  endpoints: Partial<Record<ProviderName, string>>;
  /** Vertex AI's Google Cloud project, when the service-account key names none (or another). */
  vertexProject?: string;
  secrets: SecretSource;
  /** The catalog's OpenAI-compatible endpoints, their base URLs overridden where configured. */
  openaiCompatible: Readonly<Record<string, Endpoint>>;
}

const FACTORIES: Record<ProviderName, (s: ProviderSettings) => Provider> = {
  bedrock: (s) => createBedrockProvider({ endpoint: s.endpoints.bedrock }),
  azure_openai: (s) => createAzureOpenAIProvider({ endpoint: s.endpoints.azure_openai, secrets: s.secrets }),
  openai: (s) => createOpenAIProvider({ baseUrl: s.endpoints.openai, secrets: s.secrets }),
  openai_compatible: (s) => createOpenAICompatibleProvider({ endpoints: s.openaiCompatible, secrets: s.secrets }),
  vertex_ai: (s) => createVertexProvider({ endpoint: s.endpoints.vertex_ai, project: s.vertexProject, secrets: s.secrets }),
  anthropic: (s) => createAnthropicProvider({ baseUrl: s.endpoints.anthropic, secrets: s.secrets }),
};

export type ProviderRegistry = ReadonlyMap<string, Provider>;

export function createProviders(settings: ProviderSettings): ProviderRegistry {
  return new Map(Object.entries(FACTORIES).map(([name, create]) => [name, create(settings)]));
}

/** The secret (as `secrets.get` names it) a route's calls need; Bedrock's calls are signed by the function's role. */
const CREDENTIALS: Partial<Record<ProviderName, (route: Route, endpoints: Catalog['endpoints']) => string | undefined>> = {
  azure_openai: () => 'azure_openai',
  openai: () => 'openai',
  openai_compatible: (route, endpoints) => (route.endpoint && endpoints[route.endpoint]?.secret ? endpointSecretName(route.endpoint) : undefined),
  vertex_ai: () => 'vertex_ai',
  anthropic: () => 'anthropic',
};

/** Every credential the catalog's served routes need, once each (the stack creates a secret for each). */
export function credentialsNeeded(c: Catalog): string[] {
  const names = c.models.flatMap((m) => m.served.map((r) => CREDENTIALS[r.provider as ProviderName]?.(r, c.endpoints)));
  return [...new Set(names.filter((n): n is string => n !== undefined))].sort();
}
