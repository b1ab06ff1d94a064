import { createBedrockProvider } from './bedrock';
import type { ProviderName } from './names';
import type { Provider } from './provider';

/** Where each provider is reached: an override per provider, else the provider's own (AWS's or the vendor's). */
export interface ProviderSettings {
  endpoints: Partial<Record<ProviderName, string>>;
}

const FACTORIES: Record<ProviderName, (s: ProviderSettings) => Provider> = {
  bedrock: (s) => createBedrockProvider({ endpoint: s.endpoints.bedrock }),
};

export type ProviderRegistry = ReadonlyMap<string, Provider>;

export function createProviders(settings: ProviderSettings): ProviderRegistry {
  return new Map(Object.entries(FACTORIES).map(([name, create]) => [name, create(settings)]));
}
