/** One server-sent event: its `event:` name (if any) and its `data:` lines joined by newlines. */
export interface SseEvent {
  event?: string;
  data: string;
}

/**
 * Server-sent events (the WHATWG event-stream format) from a response body, as they complete. Lines end with
 * CRLF, LF or CR; comments (`:` lines, keep-alives) and fields other than `event` and `data` are skipped; a
 * partial event left when the body ends is dropped, as the format says.
 */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event: string | undefined;
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let start = 0;
    const eol = /\r\n|\r|\n/g;
    for (let m = eol.exec(buffer); m; m = eol.exec(buffer)) {
      // A CR at the very end of the buffer may be the first half of a CRLF: wait for the next chunk.
      if (m[0] === '\r' && m.index + 1 === buffer.length) break;
      const line = buffer.slice(start, m.index);
      start = m.index + m[0].length;
      if (line === '') {
        if (data.length) yield { ...(event !== undefined ? { event } : {}), data: data.join('\n') };
        event = undefined;
        data = [];
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
    }
    buffer = buffer.slice(start);
  }
}
