import { createAnthropicProvider } from './anthropic';
import { createBedrockProvider } from './bedrock';
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
}

const FACTORIES: Record<ProviderName, (s: ProviderSettings) => Provider> = {
  bedrock: (s) => createBedrockProvider({ endpoint: s.endpoints.bedrock }),
  vertex_ai: (s) => createVertexProvider({ endpoint: s.endpoints.vertex_ai, project: s.vertexProject, secrets: s.secrets }),
  anthropic: (s) => createAnthropicProvider({ baseUrl: s.endpoints.anthropic, secrets: s.secrets }),
};

export type ProviderRegistry = ReadonlyMap<string, Provider>;

export function createProviders(settings: ProviderSettings): ProviderRegistry {
  return new Map(Object.entries(FACTORIES).map(([name, create]) => [name, create(settings)]));
}
