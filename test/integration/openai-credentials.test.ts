import type { Route } from '../../lambdas/core/catalog';
import { parseChatRequest } from '../../lambdas/core/openai';
import { createAzureOpenAIProvider, createOpenAIProvider } from '../../lambdas/providers/openai-compatible';
import type { SecretSource } from '../../lambdas/secrets';
import { startOpenAIStandIn, type OpenAIStandIn } from '../../local/openai-standin';

/* The providers' credentials and configuration, against the stand-ins: nothing leaves without them. */

const request = parseChatRequest(JSON.stringify({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'hi' }] }));
const route: Route = { provider: 'azure_openai', region: 'canadaeast', upstream_id: 'gpt-4o', jurisdiction: 'CA', canadian_controlled: false, verified: false };
const secretsOf = (values: Record<string, string>): SecretSource => ({ get: async (name) => values[name], has: (name) => name in values });

let azure: OpenAIStandIn;
let openai: OpenAIStandIn;
beforeAll(async () => {
  [azure, openai] = await Promise.all([startOpenAIStandIn({ flavor: 'azure' }), startOpenAIStandIn({ flavor: 'openai' })]);
});
afterAll(async () => {
  await azure.close();
  await openai.close();
});

test('without a credential or an endpoint the route is not enabled, and no request is sent', async () => {
  await expect(createAzureOpenAIProvider({ endpoint: azure.url, secrets: secretsOf({}) }).stream(route, request, 10)).rejects.toMatchObject({ failure: 'not_enabled' });
  await expect(createAzureOpenAIProvider({ secrets: secretsOf({ azure_openai: 'k' }) }).stream(route, request, 10)).rejects.toMatchObject({ failure: 'not_enabled' });
  await expect(createOpenAIProvider({ baseUrl: `${openai.url}/v1`, secrets: secretsOf({}) }).stream(route, request, 10)).rejects.toMatchObject({ failure: 'not_enabled' });
  expect([azure.requests.length, openai.requests.length]).toEqual([0, 0]);
});

test('a key with its line end still works; a URL the provider does not serve (404) is not_enabled', async () => {
  const ok = await createAzureOpenAIProvider({ endpoint: `${azure.url}/`, secrets: secretsOf({ azure_openai: 'key\n' }) }).stream(route, request, 10);
  for await (const _ of ok.events) void _;
  expect(azure.requests.at(-1)).toMatchObject({ path: '/openai/deployments/gpt-4o/chat/completions', authenticated: true, outcome: 'answered' });
  const wrongPath = createOpenAIProvider({ baseUrl: `${azure.url}/v1`, secrets: secretsOf({ openai: 'k' }) });
  await expect(wrongPath.stream(route, request, 10)).rejects.toMatchObject({ failure: 'not_enabled' });
});
