import OpenAI from 'openai';
import { setByok } from '../../lambdas/app/byok';
import { catalog } from '../../lambdas/catalog';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * A deployment without the operator's own OpenAI key: OpenAI's routes are not served on the operator's credential
 * (refused naming it, not listed), while a key holding its own OpenAI credential (BYOK) is still served on them,
 * and lists them.
 */

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ unconfigured: ['azure_openai', 'openai'] });
});
afterAll(() => gw.close());

test('OpenAI-only models are refused naming the credential, and a key with its own OpenAI key is served on their routes', async () => {
  const operator = await gw.client({ tier: 'global' });
  const err = await operator.openai.chat.completions.create({ model: 'openai/gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] }).then(() => null, (e: unknown) => e);
  expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_available_in_tier');
  expect((err as Error).message).toContain('no openai credential');
  expect((await operator.openai.models.list()).data.map((m) => m.id)).not.toContain('openai/gpt-4.1');
  expect(gw.openaiStandIns.openai!.requests).toEqual([]);

  const customer = await gw.client({ tier: 'global' });
  await setByok(customer.keyId, { provider: 'openai', secret: 'sk-customer-own-openai-key' });
  const answer = await customer.openai.chat.completions.create({ model: 'openai/gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] });
  expect(answer.choices[0].message.content).toBe('Hello from the openai stand-in.');
  expect(gw.openaiStandIns.openai!.requests.map((r) => [r.model, r.outcome])).toEqual([['gpt-4.1', 'answered']]);
});

test("GET /v1/models lists, for a key with its own OpenAI key, the OpenAI models it can call under the tier; other keys' lists are unchanged", async () => {
  const operator = await gw.client({ tier: 'global' });
  const customer = await gw.client({ tier: 'global' });
  await setByok(customer.keyId, { provider: 'openai', secret: 'sk-customer-own-openai-key' });
  const ids = async (c: typeof customer, tier?: string) => (await c.openai.models.list(tier ? { headers: { 'x-ni-privacy-tier': tier } } : {})).data.map((m) => m.id);

  const everyone = await ids(operator);
  expect(everyone).not.toContain('openai/gpt-4o');
  const own = await ids(customer);
  // The catalog's order, with the two models whose only global routes are OpenAI's added.
  expect(own).toEqual(catalog().models.map((m) => m.id).filter((id) => everyone.includes(id) || id === 'openai/gpt-4o' || id === 'openai/gpt-4.1'));
  expect(own).toContain('openai/gpt-4.1');
  // Each listed model answers on the customer's credential.
  const answer = await customer.openai.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
  expect(answer.choices[0].message.content).toBe('Hello from the openai stand-in.');

  // OpenAI's API processes in the US: under a Canadian tier the customer's key serves nothing more than anyone's.
  expect(await ids(customer, 'managed_canadian_cloud')).toEqual(await ids(operator, 'managed_canadian_cloud'));
  expect(await ids(operator)).toEqual(everyone);
});

test('GET /v1/models lists, under managed_canadian_cloud, the model a key\'s own Azure deployment in Canada East serves', async () => {
  const operator = await gw.client({ tier: 'managed_canadian_cloud' });
  const customer = await gw.client({ tier: 'managed_canadian_cloud' });
  await setByok(customer.keyId, {
    provider: 'azure_openai', secret: 'azure-customer-own-key', endpoint: 'https://canadaeast.api.cognitive.microsoft.com',
    deployments: { 'openai/gpt-4o': 'acme-gpt-4o' }, deployment_type: 'standard',
  });
  const everyone = (await operator.openai.models.list()).data.map((m) => m.id);
  expect(everyone).not.toContain('openai/gpt-4o'); // the operator's Azure route is not configured
  const own = (await customer.openai.models.list()).data.map((m) => m.id);
  expect(own).toEqual(catalog().models.map((m) => m.id).filter((id) => everyone.includes(id) || id === 'openai/gpt-4o'));
});

test("errors list, for a key with its own credentials, the models that key can call; other keys' lists are unchanged", async () => {
  type Refusal = InstanceType<typeof OpenAI.APIError> & { error: { available_models: string[] } };
  const refusal = (c: Awaited<ReturnType<TestGateway['client']>>, model: string) =>
    c.openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }] }).then(() => { throw new Error('served'); }, (e: unknown) => e as Refusal);
  const listed = async (c: Awaited<ReturnType<TestGateway['client']>>) => (await c.openai.models.list()).data.map((m) => m.id);

  // Not deployed: a key with its own OpenAI key also hears of the OpenAI models it can call.
  const operator = await gw.client({ tier: 'global' });
  const openaiCustomer = await gw.client({ tier: 'global' });
  await setByok(openaiCustomer.keyId, { provider: 'openai', secret: 'sk-customer-own-openai-key' });
  const everyone = (await refusal(operator, 'openai/gpt-nope')).error.available_models;
  expect(everyone).not.toContain('openai/gpt-4o');
  expect(everyone).not.toContain('openai/gpt-4.1');
  const own = await refusal(openaiCustomer, 'openai/gpt-nope');
  expect(own.code).toBe('model_not_found');
  // The catalog's order, with the two models whose only global routes are OpenAI's added.
  expect(own.error.available_models).toEqual([...catalog().byId.keys()].filter((id) => everyone.includes(id) || id === 'openai/gpt-4o' || id === 'openai/gpt-4.1'));
  expect(own.message).toContain('openai/gpt-4.1');

  // Not in the tier: a key whose own Azure deployment in Canada East serves openai/gpt-4o lists it, as GET /v1/models does.
  const canadian = await gw.client({ tier: 'managed_canadian_cloud' });
  const azureCustomer = await gw.client({ tier: 'managed_canadian_cloud' });
  await setByok(azureCustomer.keyId, {
    provider: 'azure_openai', secret: 'azure-customer-own-key', endpoint: 'https://canadaeast.api.cognitive.microsoft.com',
    deployments: { 'openai/gpt-4o': 'acme-gpt-4o' }, deployment_type: 'standard',
  });
  const inTier = await refusal(canadian, 'anthropic/claude-sonnet-4.5');
  expect(inTier.code).toBe('model_not_available_in_tier');
  expect(inTier.error.available_models).toEqual(await listed(canadian));
  expect(inTier.error.available_models).not.toContain('openai/gpt-4o');
  const ownInTier = await refusal(azureCustomer, 'anthropic/claude-sonnet-4.5');
  expect(ownInTier.code).toBe('model_not_available_in_tier');
  expect(ownInTier.error.available_models).toEqual(await listed(azureCustomer));
  expect(ownInTier.error.available_models).toContain('openai/gpt-4o');
  expect(ownInTier.message).toContain('openai/gpt-4o');
});
