import { parseSse, type SseEvent } from '../../lambdas/providers/sse';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield new TextEncoder().encode(p);
}

async function parse(...parts: string[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of parseSse(chunks(...parts))) out.push(e);
  return out;
}

describe('parseSse', () => {
  test('named events, multi-line data, comments and unknown fields', async () => {
    expect(await parse('event: message_start\ndata: {"a":1}\n\n: keep-alive\n\ndata: line 1\ndata: line 2\nid: 7\nretry: 10\n\n')).toEqual([
      { event: 'message_start', data: '{"a":1}' },
      { data: 'line 1\nline 2' },
    ]);
  });

  test('CRLF and CR line ends, even split across chunks, and a UTF-8 character split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: é\r\n\r\n');
    const out: SseEvent[] = [];
    async function* split() {
      yield new TextEncoder().encode('data: {"x":1}\r');
      yield new TextEncoder().encode('\n\r\ndata: two\r\r');
      yield bytes.slice(0, 7); // "data: " and the first byte of é
      yield bytes.slice(7);
    }
    for await (const e of parseSse(split())) out.push(e);
    expect(out).toEqual([{ data: '{"x":1}' }, { data: 'two' }, { data: 'é' }]);
  });

  test('only the one space after the colon is dropped; a field without a colon is empty', async () => {
    expect(await parse('data:  two spaces\ndata\n\n')).toEqual([{ data: ' two spaces\n' }]);
  });

  test('an event not ended by a blank line when the body ends is dropped, and the event name resets', async () => {
    expect(await parse('event: a\ndata: 1\n\ndata: 2\n\ndata: partial')).toEqual([{ event: 'a', data: '1' }, { data: '2' }]);
  });
});
