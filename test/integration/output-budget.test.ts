import { startTestGateway, type TestGateway } from '../support/gateway';

/* The maxTokens the gateway asks Bedrock for, as the stand-in received it, with and without a per-key default. */

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(() => gw.close());

const SONNET = 'anthropic/claude-sonnet-4.5';

async function askedMaxTokens(keyDefault: number | null, maxTokens?: number): Promise<unknown> {
  const { openai } = await gw.client({ tier: 'global', default_max_tokens: keyDefault });
  const marker = `budget ${Math.random()}`;
  await openai.chat.completions.create({ model: SONNET, messages: [{ role: 'user', content: marker }], ...(maxTokens && { max_tokens: maxTokens }) });
  return gw.standIn!.requests.find((r) => r.raw.includes(marker))?.body.inferenceConfig.maxTokens;
}

test("a request without max_tokens asks for the model's default, not its maximum", async () => {
  expect(await askedMaxTokens(null)).toBe(16_384);
});

test("a key's default replaces the model's; the request's own max_tokens replaces both; the limit caps all", async () => {
  expect(await askedMaxTokens(512)).toBe(512);
  expect(await askedMaxTokens(512, 40)).toBe(40);
  expect(await askedMaxTokens(100_000)).toBe(64_000);
  expect(await askedMaxTokens(null, 100_000)).toBe(64_000);
});
