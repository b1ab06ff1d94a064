import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * A deployment without Azure OpenAI (no resource endpoint): openai/gpt-4o's first route, Azure in Canada East, is
 * not served. Under `global` the model falls through to OpenAI's API; the Canadian tiers refuse it naming the
 * setting the operator has to give, and do not advertise it.
 */

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ unconfigured: ['azure_openai'] });
});
afterAll(() => gw.close());

const GPT_4O = 'openai/gpt-4o';

test('under global, gpt-4o is answered by OpenAI directly and listed', async () => {
  const { openai } = await gw.client({ tier: 'global' });
  const { data, response } = await openai.chat.completions.create({ model: GPT_4O, stream: true, messages: [{ role: 'user', content: 'Bonjour' }] }).withResponse();
  let text = '';
  for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? '';
  expect(text).toBe('Hello from the openai stand-in.');
  expect(response.headers.get('x-ni-custody-path')).toContain('openai-standin@loopback#gpt-4o');
  expect(gw.openaiStandIns.openai!.requests.map((r) => r.model)).toEqual(['gpt-4o']);
  expect(gw.openaiStandIns.azure_openai).toBeNull();
  expect((await openai.models.list()).data.map((m) => m.id)).toContain(GPT_4O);
});

test('under managed_canadian_cloud, gpt-4o is refused naming the missing Azure setting, and not listed', async () => {
  const { openai } = await gw.client({ tier: 'managed_canadian_cloud' });
  const before = gw.openaiStandIns.openai!.requests.length;
  const err = await openai.chat.completions.create({ model: GPT_4O, messages: [{ role: 'user', content: 'Bonjour' }] }).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  const e = err as InstanceType<typeof OpenAI.BadRequestError>;
  expect(e.code).toBe('model_not_available_in_tier');
  expect(e.message).toContain('NI_AZURE_OPENAI_ENDPOINT');
  expect(e.message).toContain('azureOpenAIEndpoint');
  expect(gw.openaiStandIns.openai!.requests.length).toBe(before); // nothing left for the US
  const listed = (await openai.models.list()).data.map((m) => m.id);
  expect(listed).not.toContain(GPT_4O);
  expect(listed).toContain('vertex_ai/gemini-2-5-flash');
});
