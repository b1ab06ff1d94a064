/** The upstream APIs the gateway has a client for (each a folder beside this file, created in registry.ts). */
export const PROVIDER_NAMES = ['bedrock', 'azure_openai', 'openai', 'openai_compatible'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];
