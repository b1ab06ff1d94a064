import { hasImages, type ChatRequest, type ContentPart, type ToolSpec } from './chat';
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

/** Every string of a JSON value, object keys included (tool-call arguments and schemas carry data in keys too). */
function jsonStrings(v: unknown, out: string[]): void {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) jsonStrings(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      jsonStrings(x, out);
    }
  }
}

/** Every string of the request the provider will see, except tool names (see `toolNames`). */
function requestStrings(req: ChatRequest): string[] {
  const out = [...req.system, ...(req.stop ?? [])];
  for (const t of req.tools) {
    if (t.description) out.push(t.description);
    jsonStrings(t.inputSchema, out);
  }
  for (const m of req.messages) {
    for (const p of m.content) {
      if (p.type === 'text') out.push(p.text);
      else if (p.type === 'tool_call') jsonStrings(p.input, out);
      else if (p.type === 'tool_result') out.push(...p.content);
    }
  }
  return out;
}

/** Tool names, offered and called: the provider restricts them to [a-zA-Z0-9_-], which no placeholder fits. */
function toolNames(req: ChatRequest): string[] {
  const names = req.tools.map((t) => t.name);
  for (const m of req.messages) for (const p of m.content) if (p.type === 'tool_call') names.push(p.name);
  return names;
}

function substituteDeep(v: unknown, s: PiiSession): unknown {
  if (typeof v === 'string') return s.substitute(v);
  if (Array.isArray(v)) return v.map((x) => substituteDeep(x, s));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [s.substitute(k), substituteDeep(x, s)]));
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

const substituteTool = (t: ToolSpec, s: PiiSession): ToolSpec => ({
  ...t,
  ...(t.description === undefined ? {} : { description: s.substitute(t.description) }),
  inputSchema: substituteDeep(t.inputSchema, s) as Record<string, unknown>,
});

const refused = (message: string, code: string, param: string, types: string[]) =>
  new GatewayError(400, message, 'invalid_request_error', code, param, { pii_types: types });

export function protect(req: ChatRequest, mode: PiiMode): Protection {
  if (mode === 'off') return { request: req, session: null, counts: {}, total: 0 };
  try {
    const corpus = requestStrings(req);
    const names = toolNames(req);
    const session = createPiiSession([...corpus, ...names]);
    // A tool name cannot carry a placeholder, so personal data in one is refused in either mode.
    const inNames = session.typesFound(names);
    if (inNames.length) {
      throw refused(`A tool name contains personal data (${inNames.join(', ')}), which cannot be replaced in a tool name. Nothing was sent to the model.`,
        'pii_in_tool_name', 'tools', inNames);
    }
    if (mode === 'block') {
      const types = session.typesFound(corpus);
      if (types.length) {
        throw refused(`The request contains personal data (${types.join(', ')}) and this API key blocks personal data. Nothing was sent to the model.`,
          'pii_detected', 'messages', types);
      }
      // Images cannot be screened: a key that blocks personal data cannot let one through unseen.
      if (hasImages(req)) {
        throw refused('This API key blocks personal data, and images cannot be screened for it. Nothing was sent to the model.',
          'pii_unscreenable_image', 'messages', []);
      }
      return { request: req, session: null, counts: {}, total: 0 };
    }
    const request: ChatRequest = {
      ...req,
      system: req.system.map((t) => session.substitute(t)),
      messages: req.messages.map((m) => ({ role: m.role, content: m.content.map((p) => substitutePart(p, session)) })),
      tools: req.tools.map((t) => substituteTool(t, session)),
      ...(req.stop ? { stop: req.stop.map((t) => session.substitute(t)) } : {}),
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

