import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * PII through the running local server: the stand-in (recording what it received) never sees an original
 * value, and an echoing stand-in makes the client see the original text again — streamed, not streamed, in
 * tool calls, split at every chunk boundary; every answer checked against OpenAI's schemas (the test clients validate).
 */

let gw: TestGateway;
let openai: OpenAI;
const MODEL = 'anthropic/claude-sonnet-4.5';

const EMAIL = 'jane.tremblay@northwind.ca';
const PHONE = '(613) 555-0142';
const SIN = '130 692 544';
const PERSONAL = `My name is Jane Tremblay, email ${EMAIL}, phone ${PHONE}, SIN ${SIN}.`;
const ORIGINALS = [EMAIL, PHONE, SIN, 'Jane Tremblay'];

beforeAll(async () => {
  gw = await startTestGateway();
  openai = (await gw.client({ tier: 'global' })).openai;
});
afterAll(() => gw.close());

const recorded = (marker: string) => gw.standIn!.requests.filter((r) => r.raw.includes(marker));
const neverSent = (marker: string) => {
  const seen = recorded(marker);
  expect(seen.length).toBeGreaterThan(0);
  for (const r of seen) for (const v of ORIGINALS) expect(r.raw).not.toContain(v);
};

async function streamText(content: string) {
  const stream = await openai.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content }] });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  return text;
}

test('substituted before the provider, restored in a non-streamed answer', async () => {
  const content = `m1 ni-standin:echo ${PERSONAL}`;
  const { data, response } = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'system', content: `Reply to ${EMAIL}.` }, { role: 'user', content }] }).withResponse();
  expect(data.choices[0].message.content).toBe(content);
  expect(Number(response.headers.get('x-ni-pii-substitutions'))).toBeGreaterThanOrEqual(4);
  neverSent('m1 ni-standin:echo');
  // The same value gets the same placeholder everywhere in the request.
  const sent = recorded('m1 ni-standin:echo')[0].body;
  const placeholder = sent.system[0].text.replace('Reply to ', '').replace(/\.$/, '');
  expect(sent.messages[0].content[0].text).toContain(placeholder);
});

test('names without a cue, in prose and a CSV row, never reach the provider and come back exact in a stream', async () => {
  const names = ['Marie-Ève Tremblay', 'Côté,Jean-François'];
  const content = `m-names ni-standin:echo ni-standin:chunk=3 I met ${names[0]} yesterday; the export row is ${names[1]},514-555-0199.`;
  expect(await streamText(content)).toBe(content);
  const seen = recorded('m-names ni-standin:echo');
  expect(seen.length).toBeGreaterThan(0);
  for (const r of seen) for (const v of names) expect(r.raw).not.toContain(v);
});

test.each([1, 2, 3, 5, 7, 11])('restored in a stream split every %i characters', async (n) => {
  const content = `m2-${n} ni-standin:echo ni-standin:chunk=${n} ${PERSONAL}`;
  expect(await streamText(content)).toBe(content);
  neverSent(`m2-${n} `);
});

test('values in tool results and tool-call arguments', async () => {
  const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { text: { type: 'string' } } } } }];
  const stream = await openai.chat.completions.create({
    model: MODEL, stream: true, tools, messages: [{ role: 'user', content: `m3 ni-standin:tool_calls=1 ni-standin:chunk=3 ${PERSONAL}` }],
  });
  let args = '';
  for await (const c of stream) args += c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
  expect(JSON.parse(args)).toEqual({ text: `m3 ni-standin:tool_calls=1 ni-standin:chunk=3 ${PERSONAL}` });
  neverSent('m3 ni-standin');

  const nonStreamed = await openai.chat.completions.create({ model: MODEL, tools, messages: [{ role: 'user', content: `m4 ni-standin:tool_calls=1 ${PERSONAL}` }] });
  const call = nonStreamed.choices[0].message.tool_calls![0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
  expect(JSON.parse(call.function.arguments).text).toContain(EMAIL);

  const answer = await openai.chat.completions.create({
    model: MODEL, tools,
    messages: [
      { role: 'user', content: 'm5 who is it?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: JSON.stringify({ text: EMAIL }) } }] },
      { role: 'tool', tool_call_id: 'call_1', content: `Customer: ${PHONE}` },
    ],
  });
  expect(answer.choices[0].message.content).toBe(`Tool results: Customer: ${PHONE}`);
  neverSent('m5 who is it?');
});

test('placeholders the model invents pass through unchanged', async () => {
  const { data } = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `m6 ni-standin:echo ${EMAIL}` }] }).withResponse();
  const sent = recorded('m6 ni-standin:echo')[0].body.messages[0].content[0].text as string;
  const placeholder = sent.replace('m6 ni-standin:echo ', '');
  const invented = placeholder.replace(/\d+/, '99');
  expect(invented).not.toBe(placeholder);
  expect(data.choices[0].message.content).toBe(`m6 ni-standin:echo ${EMAIL}`);
  const again = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `m7 ni-standin:echo ${invented}` }] });
  expect(again.choices[0].message.content).toBe(`m7 ni-standin:echo ${invented}`);
});

test('ordinary source code passes through untouched', async () => {
  const code = 'const port = 8080; // see 1.2.3.4 and commit 3f9a1c2e4b5d6f708192a3b4c5d6e7f8091a2b3c\nfetch(`http://127.0.0.1:${port}/v1`, { id: "550e8400-e29b-41d4-a716-446655440000" });';
  const { data, response } = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `m8 ni-standin:echo ${code}` }] }).withResponse();
  expect(data.choices[0].message.content).toBe(`m8 ni-standin:echo ${code}`);
  expect(response.headers.get('x-ni-pii-substitutions')).toBe('0');
  expect(recorded('m8 ni-standin:echo')[0].body.messages[0].content[0].text).toBe(`m8 ni-standin:echo ${code}`);
});

test("block mode refuses personal data with the types and sends nothing; 'off' forwards as is", async () => {
  const blocked = (await gw.client({ tier: 'global', pii_mode: 'block' })).openai;
  const err = await blocked.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `m9 ${PERSONAL}` }] }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('pii_detected');
  expect((err as InstanceType<typeof OpenAI.APIError>).message).toMatch(/EMAIL/);
  expect(recorded('m9 ')).toHaveLength(0);
  const clean = await blocked.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'm10 nothing personal' }] });
  expect(clean.choices[0].message.content).toBeTruthy();

  const off = (await gw.client({ tier: 'global', pii_mode: 'off' })).openai;
  await off.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `m11 ${EMAIL}` }] });
  expect(recorded('m11 ')[0].raw).toContain(EMAIL);
});
