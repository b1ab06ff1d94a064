import OpenAI from 'openai';
import { setByok } from '../../lambdas/app/byok';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * A deployment without the operator's own OpenAI key: OpenAI's routes are not served on the operator's credential
 * (refused naming it, not listed), while a key holding its own OpenAI credential (BYOK) is still served on them.
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
