import { createBedrockProvider } from './bedrock';
import type { SecretSource } from '../secrets';
import type { ProviderName } from './names';
import type { Provider } from './provider';

/** Where each provider is reached (an override per provider, else its own) and where its credentials are. */
export interface ProviderSettings {
  endpoints: Partial<Record<ProviderName, string>>;
  secrets: SecretSource;
}

const FACTORIES: Record<ProviderName, (s: ProviderSettings) => Provider> = {
  bedrock: (s) => createBedrockProvider({ endpoint: s.endpoints.bedrock }),
};

export type ProviderRegistry = ReadonlyMap<string, Provider>;

export function createProviders(settings: ProviderSettings): ProviderRegistry {
  return new Map(Object.entries(FACTORIES).map(([name, create]) => [name, create(settings)]));
}
