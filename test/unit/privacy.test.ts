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
