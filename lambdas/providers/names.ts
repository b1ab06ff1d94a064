/** The upstream APIs the gateway has a client for (each a folder beside this file, created in registry.ts). */
export const PROVIDER_NAMES = ['bedrock', 'vertex_ai', 'anthropic'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];
