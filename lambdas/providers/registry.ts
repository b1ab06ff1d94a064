import type { Endpoint } from '../core/catalog';
import { createBedrockProvider } from './bedrock';
import { createAzureOpenAIProvider, createOpenAICompatibleProvider, createOpenAIProvider } from './openai-compatible';
import type { SecretSource } from '../secrets';
import type { ProviderName } from './names';
import type { Provider } from './provider';

/** Where each provider is reached (an override per provider, else its own) and where its credentials are. */
export interface ProviderSettings {
  endpoints: Partial<Record<ProviderName, string>>;
  secrets: SecretSource;
  /** The catalog's OpenAI-compatible endpoints, their base URLs overridden where configured. */
  openaiCompatible: Readonly<Record<string, Endpoint>>;
}

const FACTORIES: Record<ProviderName, (s: ProviderSettings) => Provider> = {
  bedrock: (s) => createBedrockProvider({ endpoint: s.endpoints.bedrock }),
  azure_openai: (s) => createAzureOpenAIProvider({ endpoint: s.endpoints.azure_openai, secrets: s.secrets }),
  openai: (s) => createOpenAIProvider({ baseUrl: s.endpoints.openai, secrets: s.secrets }),
  openai_compatible: (s) => createOpenAICompatibleProvider({ endpoints: s.openaiCompatible, secrets: s.secrets }),
};

export type ProviderRegistry = ReadonlyMap<string, Provider>;

export function createProviders(settings: ProviderSettings): ProviderRegistry {
  return new Map(Object.entries(FACTORIES).map(([name, create]) => [name, create(settings)]));
}
