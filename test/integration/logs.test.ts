import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { fetchOpenAI } from '../support/openapi';
import { captureOutput, type OutputCapture } from '../support/output-capture';
import { reloadConfig } from '../../lambdas/config';

/*
 * What the gateway logs, at its most verbose, while it serves prompts full of personal data: structured JSON
 * lines carrying request ids — never prompt or completion text, personal data, keys or Authorization headers.
 */

let gw: TestGateway;
let output: OutputCapture;

beforeAll(async () => {
  process.env.NI_LOG_LEVEL = 'DEBUG';
  reloadConfig();
  output = captureOutput();
  gw = await startTestGateway();
});
afterAll(async () => {
  output.restore();
  process.env.NI_LOG_LEVEL = 'ERROR';
  reloadConfig();
  await gw.close();
});

test('log lines are JSON with request ids and hold no prompt, completion, PII or key', async () => {
  const { openai, secret } = await gw.client({ tier: 'global' });
  const prompt = 'logcheck ni-standin:echo Call Jane Tremblay at (613) 555-0142 or jane.tremblay@northwind.ca about the maple syrup';
  const { response } = await openai.chat.completions.create({ model: 'meta/llama-3-70b', messages: [{ role: 'user', content: prompt }] }).withResponse();
  const { data: stream, response: streamed } = await openai.chat.completions.create({ model: 'anthropic/claude-sonnet-4.5', stream: true, messages: [{ role: 'user', content: `${prompt} ni-standin:fail_mid_stream` }] }).withResponse();
  await expect((async () => { for await (const _ of stream) void _; })()).rejects.toBeInstanceOf(OpenAI.APIError);
  await expect(new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'ni_live_' + 'x'.repeat(43), maxRetries: 0, fetch: fetchOpenAI }).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  await gw.flush();
  // The ledger writer logs on the store's thread, whose output reaches this thread's stdout on its own
  // schedule: its last line for each request ('custody event recorded') says the rest has arrived before it.
  const requestId = response.headers.get('x-request-id')!;
  for (const id of [requestId, streamed.headers.get('x-request-id')!]) {
    await output.until((l) => l.includes('"custody event recorded"') && l.includes(id));
  }

  const { lines } = output;
  const json = lines.filter((l) => l.startsWith('{'));
  expect(json.length).toBeGreaterThan(0);
  expect(json.some((l) => l.includes(requestId))).toBe(true);
  for (const l of json) expect(() => JSON.parse(l)).not.toThrow();
  const forbidden = ['maple syrup', 'Jane Tremblay', '555-0142', 'jane.tremblay@northwind.ca', 'Hello from the Bedrock stand-in', secret, secret.slice(8), 'Bearer', 'ni_live_xxxx'];
  for (const l of lines) for (const f of forbidden) expect(l).not.toContain(f);
});
