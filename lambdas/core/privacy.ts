import type { ChatRequest, ContentPart } from './chat';
import { GatewayError } from './errors';
import { createPiiSession, type PiiCounts, type PiiSession, type StreamRestorer } from './pii';
import type { PiiMode } from './principal';
import type { CompletionSink } from './stream';

/*
 * PII applied to one chat request and its answer: every string the provider will see is scanned, values are
 * replaced by placeholders, and the answer is restored before the client sees it. A failed scan fails closed.
 */

export interface Protection {
  request: ChatRequest;
  /** null when nothing was substituted: the answer then passes through untouched. */
  session: PiiSession | null;
  counts: PiiCounts;
  total: number;
}

function requestStrings(req: ChatRequest): string[] {
  const out = [...req.system];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  for (const m of req.messages) {
    for (const p of m.content) {
      if (p.type === 'text') out.push(p.text);
      else if (p.type === 'tool_call') walk(p.input);
      else if (p.type === 'tool_result') out.push(...p.content);
    }
  }
  return out;
}

function substituteDeep(v: unknown, s: PiiSession): unknown {
  if (typeof v === 'string') return s.substitute(v);
  if (Array.isArray(v)) return v.map((x) => substituteDeep(x, s));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substituteDeep(x, s)]));
  return v;
}

function substitutePart(p: ContentPart, s: PiiSession): ContentPart {
  switch (p.type) {
    case 'text':
      return { type: 'text', text: s.substitute(p.text) };
    case 'tool_call':
      return { ...p, input: substituteDeep(p.input, s) as Record<string, unknown> };
    case 'tool_result':
      return { ...p, content: p.content.map((t) => s.substitute(t)) };
    case 'image':
      return p;
  }
}

export function protect(req: ChatRequest, mode: PiiMode): Protection {
  if (mode === 'off') return { request: req, session: null, counts: {}, total: 0 };
  try {
    const corpus = requestStrings(req);
    const session = createPiiSession(corpus);
    if (mode === 'block') {
      const types = session.typesFound(corpus);
      if (types.length) {
        throw new GatewayError(400, `The request contains personal data (${types.join(', ')}) and this API key blocks personal data. Nothing was sent to the model.`,
          'invalid_request_error', 'pii_detected', 'messages', { pii_types: types });
      }
      return { request: req, session: null, counts: {}, total: 0 };
    }
    const request: ChatRequest = {
      ...req,
      system: req.system.map((t) => session.substitute(t)),
      messages: req.messages.map((m) => ({ role: m.role, content: m.content.map((p) => substitutePart(p, session)) })),
    };
    return { request, session: session.total ? session : null, counts: session.counts, total: session.total };
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    // Never forward a prompt that could not be scanned.
    throw new GatewayError(500, 'Personal-data screening failed; the request was not sent to the model.', 'server_error', 'pii_screening_failed');
  }
}

/** Restores placeholders in streamed deltas, holding back only what could be the start of one. */
export class RestoringSink implements CompletionSink {
  private readonly textRestorer: StreamRestorer;
  private tool: { index: number; restorer: StreamRestorer } | null = null;

  constructor(private readonly inner: CompletionSink, private readonly session: PiiSession) {
    this.textRestorer = session.streamRestorer('text');
  }

  text(delta: string): void {
    this.inner.text(this.textRestorer.push(delta));
  }

  toolCall(index: number, id: string, name: string): void {
    this.flush();
    this.inner.toolCall(index, id, name);
    this.tool = { index, restorer: this.session.streamRestorer('json') };
  }

  toolArguments(index: number, fragment: string): void {
    if (this.tool?.index === index) this.inner.toolArguments(index, this.tool.restorer.push(fragment));
    else this.inner.toolArguments(index, this.session.restoreJson(fragment));
  }

  /** Emits whatever is still held back (at a block change and at the end of the answer). */
  flush(): void {
    this.inner.text(this.textRestorer.flush());
    if (this.tool) this.inner.toolArguments(this.tool.index, this.tool.restorer.flush());
    this.tool = null;
  }
}

