import type { ChatRequest } from '../../lambdas/core/chat';
import type { GatewayError } from '../../lambdas/core/errors';

const request: ChatRequest = {
  model: 'm', stream: false, includeUsage: false, system: ['Reply to jane.tremblay@northwind.ca'], tools: [],
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Call (613) 555-0142' }, { type: 'tool_call', id: 't', name: 'f', input: { to: ['jane.tremblay@northwind.ca'] } }] }],
};

describe('protect', () => {
  test('fails closed: a scanner exception is a 500 and nothing is returned to forward', () => {
    jest.isolateModules(() => {
      jest.doMock('../../lambdas/core/pii', () => ({ createPiiSession: () => { throw new Error('scanner bug'); } }));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { protect } = require('../../lambdas/core/privacy') as typeof import('../../lambdas/core/privacy');
      let err: GatewayError | undefined;
      try {
        protect(request, 'substitute');
      } catch (e) {
        err = e as GatewayError;
      }
      expect(err!.status).toBe(500);
      expect(err!.code).toBe('pii_screening_failed');
    });
    jest.dontMock('../../lambdas/core/pii');
  });

  test('substitutes system, text and nested tool inputs consistently; restores through the sink', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { protect, RestoringSink } = require('../../lambdas/core/privacy') as typeof import('../../lambdas/core/privacy');
    const p = protect(request, 'substitute');
    const sent = JSON.stringify(p.request);
    expect(sent).not.toContain('jane.tremblay@northwind.ca');
    expect(sent).not.toContain('555-0142');
    expect(p.counts).toEqual({ EMAIL: 1, PHONE: 1 });
    const placeholder = p.request.system[0].replace('Reply to ', '');
    const call = p.request.messages[0].content[1];
    expect(call.type === 'tool_call' && (call.input.to as string[])[0]).toBe(placeholder);
    const out: string[] = [];
    const sink = new RestoringSink({ text: (d) => out.push(d), toolCall: () => undefined, toolArguments: (_i, f) => out.push(f) }, p.session!);
    for (const ch of `Mail ${placeholder}!`) sink.text(ch);
    sink.toolCall(0, 'id', 'f');
    for (const ch of `{"to":"${placeholder}"}`) sink.toolArguments(0, ch);
    sink.flush();
    expect(out.join('')).toBe('Mail jane.tremblay@northwind.ca!{"to":"jane.tremblay@northwind.ca"}');
  });

  test("'off' leaves the request alone", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { protect } = require('../../lambdas/core/privacy') as typeof import('../../lambdas/core/privacy');
    expect(protect(request, 'off').request).toBe(request);
  });
});

describe('protect covers every part of the request the provider sees', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = () => require('../../lambdas/core/privacy') as typeof import('../../lambdas/core/privacy');
  const EMAIL = 'jane.tremblay@northwind.ca';
  const PHONE = '(613) 555-0142';
  const base: ChatRequest = { model: 'm', stream: false, includeUsage: false, system: [], tools: [], messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }] };
  const variants: Record<string, ChatRequest> = {
    'a tool description': { ...base, tools: [{ name: 'send', description: `Sends mail as ${EMAIL}`, inputSchema: { type: 'object' } }] },
    'a value in a tool schema': { ...base, tools: [{ name: 'send', inputSchema: { type: 'object', properties: { to: { type: 'string', enum: [EMAIL] } } } }] },
    'a key in a tool schema': { ...base, tools: [{ name: 'send', inputSchema: { type: 'object', properties: { [EMAIL]: { type: 'string' } } } }] },
    'a stop sequence': { ...base, stop: [`Call ${PHONE}`] },
    'a key inside tool-call arguments': { ...base, messages: [{ role: 'assistant', content: [{ type: 'tool_call', id: 't1', name: 'send', input: { [EMAIL]: 'x' } }] }] },
  };

  test.each(Object.keys(variants))('substitute: personal data in %s does not reach the provider', (where) => {
    const p = load().protect(variants[where], 'substitute');
    const sent = JSON.stringify(p.request);
    expect(sent).not.toContain(EMAIL);
    expect(sent).not.toContain('555-0142');
    expect(p.total).toBe(1);
    // The model answers with the placeholder; the client gets the value back, in JSON as in text.
    const placeholder = /\[[A-Z0-9_]+_1\]/.exec(sent)![0];
    expect(p.session!.restoreJson(`{"${placeholder}":1}`)).toBe(`{"${where === 'a stop sequence' ? PHONE : EMAIL}":1}`);
  });

  test.each(Object.keys(variants))('block: personal data in %s is refused', (where) => {
    expect(() => load().protect(variants[where], 'block')).toThrow(expect.objectContaining({ status: 400, code: 'pii_detected' }));
  });

  test('block: an image cannot be screened, so it is refused rather than sent', () => {
    const withImage: ChatRequest = { ...base, messages: [{ role: 'user', content: [{ type: 'image', mediaType: 'image/png', data: new Uint8Array([1]) }] }] };
    expect(() => load().protect(withImage, 'block')).toThrow(expect.objectContaining({ status: 400, code: 'pii_unscreenable_image' }));
    expect(load().protect(withImage, 'substitute').request.messages[0].content[0].type).toBe('image');
  });

  test('a tool name with personal data is refused in either mode: no placeholder fits a tool name', () => {
    const named: ChatRequest = { ...base, tools: [{ name: 'mail_jane.tremblay@northwind.ca', inputSchema: { type: 'object' } }] };
    for (const mode of ['substitute', 'block'] as const) {
      expect(() => load().protect(named, mode)).toThrow(expect.objectContaining({ status: 400, code: 'pii_in_tool_name' }));
    }
  });
});
