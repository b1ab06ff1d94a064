import { createHash } from 'node:crypto';
import type { ChatRequest, ContentPart, FinishReason, Message, StreamEvent } from '../../core/chat';
import { offersTools, toolPartAsText } from '../../core/chat';
import { upstreamStreamError } from '../../core/stream';
import { eventJson, type SseEvent } from '../http';
import { ToolCalls } from '../tool-calls';

/*
 * The gateway's request and stream ⇄ Vertex AI's Gemini `streamGenerateContent` (`alt=sse`). The shapes are the
 * subset the gateway sends and reads.
 */

type GeminiPart =
  | { text: string }
  | { inlineData: { mimeType: string; data: string } }
  | { functionCall: { name: string; args: Record<string, unknown> } }
  | { functionResponse: { name: string; response: Record<string, unknown> } };

export interface GenerateContentRequest {
  contents: { role: 'user' | 'model'; parts: GeminiPart[] }[];
  systemInstruction?: { parts: { text: string }[] };
  tools?: { functionDeclarations: { name: string; description?: string; parameters: Record<string, unknown> }[] }[];
  toolConfig?: { functionCallingConfig: { mode: 'AUTO' | 'ANY' | 'NONE'; allowedFunctionNames?: string[] } };
  generationConfig: { maxOutputTokens: number; temperature?: number; topP?: number; stopSequences?: string[] };
}

/** The JSON Schema keywords Gemini's function parameters (an OpenAPI 3 schema subset) accept. */
const SCHEMA_KEYS = new Set([
  'type', 'format', 'title', 'description', 'nullable', 'enum', 'default', 'example', 'properties', 'required', 'items',
  'minItems', 'maxItems', 'minProperties', 'maxProperties', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum',
  'anyOf', 'propertyOrdering',
]);

/**
 * A tool's JSON Schema as Gemini accepts it: keywords it rejects (`additionalProperties`, `$schema`, `$ref`…)
 * dropped at every level, `const` as a one-value enum, and `type: [T, "null"]` as T with `nullable`.
 */
export function geminiSchema(schema: unknown): Record<string, unknown> {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema as Record<string, unknown>)) {
    if (key === 'const') out.enum = [value];
    else if (key === 'type' && Array.isArray(value)) {
      const types = value.filter((t) => t !== 'null');
      if (types.length === 1) out.type = types[0];
      if (types.length < value.length) out.nullable = true;
    } else if (!SCHEMA_KEYS.has(key)) continue;
    else if (key === 'properties' && value && typeof value === 'object') {
      out.properties = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, geminiSchema(v)]));
    } else if (key === 'items') out.items = geminiSchema(value);
    else if (key === 'anyOf' && Array.isArray(value)) out.anyOf = value.map(geminiSchema);
    else out[key] = value;
  }
  return out;
}

/** Gemini's calls carry no ids; a result is matched to its call by the function name, found here from its id. */
function callNames(messages: Message[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of messages) for (const p of m.content) if (p.type === 'tool_call') names.set(p.id, p.name);
  return names;
}

function part(p: ContentPart, toolsAsText: boolean, names: Map<string, string>): GeminiPart {
  switch (p.type) {
    case 'text':
      return { text: p.text };
    case 'image':
      return { inlineData: { mimeType: p.mediaType, data: Buffer.from(p.data).toString('base64') } };
    case 'tool_call':
      return toolsAsText ? { text: toolPartAsText(p) } : { functionCall: { name: p.name, args: p.input } };
    case 'tool_result': {
      const name = names.get(p.callId);
      if (toolsAsText || !name) return { text: toolPartAsText(p) };
      const text = p.content.join('\n');
      return { functionResponse: { name, response: p.isError ? { error: text } : { output: text } } };
    }
  }
}

/** The request as streamGenerateContent takes it. `maxTokens` is already bounded by the model's limit. */
export function toGenerateContentRequest(req: ChatRequest, maxTokens: number): GenerateContentRequest {
  const sendTools = offersTools(req);
  const names = callNames(req.messages);
  const out: GenerateContentRequest = {
    contents: req.messages.map((m) => ({ role: m.role === 'assistant' ? 'model' : 'user', parts: m.content.map((p) => part(p, !sendTools, names)) })),
    generationConfig: {
      maxOutputTokens: maxTokens,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.topP !== undefined ? { topP: req.topP } : {}),
      ...(req.stop ? { stopSequences: req.stop } : {}),
    },
  };
  if (req.system.length) out.systemInstruction = { parts: req.system.map((text) => ({ text })) };
  if (sendTools) {
    out.tools = [{ functionDeclarations: req.tools.map((t) => ({ name: t.name, ...(t.description ? { description: t.description } : {}), parameters: geminiSchema(t.inputSchema) })) }];
    const choice = req.toolChoice;
    if (choice === 'required') out.toolConfig = { functionCallingConfig: { mode: 'ANY' } };
    else if (typeof choice === 'object') out.toolConfig = { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [choice.name] } };
  }
  return out;
}

/** One streamed GenerateContentResponse (the fields the gateway reads). */
interface GenerateContentChunk {
  candidates?: {
    content?: { parts?: { text?: string; thought?: boolean; functionCall?: { id?: string; name?: string; args?: Record<string, unknown> } }[] };
    finishReason?: string;
  }[];
  promptFeedback?: { blockReason?: string };
  /** A failure after the response began arrives as an event of its own. */
  error?: { status?: string; message?: string };
  usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number; thoughtsTokenCount?: number; cachedContentTokenCount?: number };
}

const FILTERED = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'LANGUAGE']);

function finishReason(reason: string, calledTools: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length';
  if (FILTERED.has(reason)) return 'content_filter';
  return calledTools ? 'tool_calls' : 'stop'; // STOP, OTHER, FINISH_REASON_UNSPECIFIED, MALFORMED_FUNCTION_CALL…
}

/**
 * One streamGenerateContent answer as the gateway's events. Gemini streams each function call whole, with no id:
 * each gets `call_` + a digest of the request body and its position, stable for the same request and distinct
 * across requests; the results come back by name (toGenerateContentRequest). Thought parts (only sent when asked
 * for) are not relayed. `usageMetadata` is cumulative: the last one is reported, after the stream ends.
 */
export async function* fromGenerateContentStream(events: AsyncIterable<SseEvent>, requestSha256: string): AsyncGenerator<StreamEvent> {
  const calls = new ToolCalls();
  let usage: GenerateContentChunk['usageMetadata'];
  let finished = false;
  for await (const sse of events) {
    const chunk = eventJson<GenerateContentChunk>(sse);
    if (chunk.error) throw upstreamStreamError(`The model provider reported ${chunk.error.status ?? 'an error'} during the response.`);
    if (chunk.usageMetadata) usage = chunk.usageMetadata;
    const candidate = chunk.candidates?.[0];
    for (const p of candidate?.content?.parts ?? []) {
      if (p.functionCall) {
        const key = calls.count;
        const id = p.functionCall.id || `call_${createHash('sha256').update(`${requestSha256}:${key}`).digest('hex').slice(0, 24)}`;
        yield calls.start(key, id, p.functionCall.name ?? '');
        const args = calls.arguments(key, JSON.stringify(p.functionCall.args ?? {}));
        if (args) yield args;
      } else if (p.text && !p.thought) yield { type: 'text', delta: p.text };
    }
    if (!finished && candidate?.finishReason) {
      finished = true;
      yield { type: 'finish', reason: finishReason(candidate.finishReason, calls.count > 0) };
    } else if (!finished && chunk.promptFeedback?.blockReason) {
      finished = true;
      yield { type: 'finish', reason: 'content_filter' };
    }
  }
  if (usage) {
    // promptTokenCount includes the cached part; candidatesTokenCount excludes thoughts, which are billed as output.
    const cached = usage.cachedContentTokenCount ?? 0;
    const thoughts = usage.thoughtsTokenCount ?? 0;
    yield { type: 'usage', usage: { input: (usage.promptTokenCount ?? 0) - cached, output: (usage.candidatesTokenCount ?? 0) + thoughts, cache_read: cached, cache_write: 0, reasoning: thoughts } };
  }
}
