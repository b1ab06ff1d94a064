import type { ChatRequest, ContentPart, FinishReason, StreamEvent } from '../../core/chat';
import { toolPartAsText } from '../../core/chat';
import type { TokenUsage } from '../../core/pricing';
import { upstreamStreamError } from '../../core/stream';
import { eventJson, type SseEvent } from '../http';
import { ToolCalls } from '../tool-calls';

/*
 * The gateway's request and stream ⇄ Anthropic's Messages API (POST /v1/messages, `stream: true`). The shapes are
 * the subset the gateway sends and reads.
 */

type MessagesBlock =
  | { type: 'text'; text: string }
  | { type: 'image'; source: { type: 'base64'; media_type: string; data: string } }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; tool_use_id: string; content: { type: 'text'; text: string }[]; is_error?: true };

export interface MessagesRequest {
  model: string;
  max_tokens: number;
  stream: true;
  messages: { role: 'user' | 'assistant'; content: MessagesBlock[] }[];
  system?: { type: 'text'; text: string }[];
  tools?: { name: string; description?: string; input_schema: Record<string, unknown> }[];
  tool_choice?: { type: 'auto' | 'any' | 'none' } | { type: 'tool'; name: string };
  temperature?: number;
  top_p?: number;
  stop_sequences?: string[];
  /** Where inference runs ("us"); absent, Anthropic's default ("global") applies. */
  inference_geo?: string;
}

function block(p: ContentPart, toolsAsText: boolean): MessagesBlock {
  switch (p.type) {
    case 'text':
      return { type: 'text', text: p.text };
    case 'image':
      return { type: 'image', source: { type: 'base64', media_type: p.mediaType, data: Buffer.from(p.data).toString('base64') } };
    case 'tool_call':
      return toolsAsText ? { type: 'text', text: toolPartAsText(p) } : { type: 'tool_use', id: p.id, name: p.name, input: p.input };
    case 'tool_result':
      return toolsAsText
        ? { type: 'text', text: toolPartAsText(p) }
        : { type: 'tool_result', tool_use_id: p.callId, content: p.content.map((text) => ({ type: 'text' as const, text })), ...(p.isError ? { is_error: true as const } : {}) };
  }
}

/**
 * The request as the Messages API takes it. `inferenceGeo`: the route's region when it pins one (`us`).
 * Tool definitions are sent even with tool_choice "none" (Anthropic's `none`), since tool blocks in history need
 * them; without any tool definitions, history tool blocks become text.
 */
export function toMessagesRequest(req: ChatRequest, model: string, maxTokens: number, inferenceGeo?: string): MessagesRequest {
  const sendTools = req.tools.length > 0;
  const out: MessagesRequest = {
    model,
    max_tokens: maxTokens,
    stream: true,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content.map((p) => block(p, !sendTools)) })),
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.topP !== undefined ? { top_p: req.topP } : {}),
    ...(req.stop ? { stop_sequences: req.stop } : {}),
    ...(inferenceGeo ? { inference_geo: inferenceGeo } : {}),
  };
  if (req.system.length) out.system = req.system.map((text) => ({ type: 'text', text }));
  if (sendTools) {
    out.tools = req.tools.map((t) => ({ name: t.name, ...(t.description ? { description: t.description } : {}), input_schema: t.inputSchema }));
    const choice = req.toolChoice;
    if (choice === 'required') out.tool_choice = { type: 'any' };
    else if (choice === 'none') out.tool_choice = { type: 'none' };
    else if (typeof choice === 'object') out.tool_choice = { type: 'tool', name: choice.name };
  }
  return out;
}

/** The stream events the gateway reads (Anthropic documents more may be added: others are skipped). */
interface MessagesUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}
interface MessagesEvent {
  type: string;
  index?: number;
  message?: { usage?: MessagesUsage };
  content_block?: { type: string; id?: string; name?: string };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string | null };
  usage?: MessagesUsage;
  error?: { type?: string; message?: string };
}

const FINISH: Record<string, FinishReason> = {
  tool_use: 'tool_calls',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  refusal: 'content_filter',
};

/** Anthropic's usage: `input_tokens` already excludes the cache's; `output_tokens` includes any thinking. */
function tokenUsage(u: MessagesUsage): TokenUsage {
  return { input: u.input_tokens ?? 0, output: u.output_tokens ?? 0, cache_read: u.cache_read_input_tokens ?? 0, cache_write: u.cache_creation_input_tokens ?? 0, reasoning: 0 };
}

/**
 * One Messages stream as the gateway's events. Usage comes in two parts: input and cache counts in
 * message_start, the cumulative output count in message_delta; both are reported after message_stop, with the
 * finish reason, so a stream cut before message_stop ends without `finish`.
 */
export async function* fromMessagesStream(events: AsyncIterable<SseEvent>): AsyncGenerator<StreamEvent> {
  const calls = new ToolCalls();
  let usage: MessagesUsage = {};
  let stopReason: string | null | undefined;
  for await (const sse of events) {
    const e = eventJson<MessagesEvent>(sse);
    switch (e.type) {
      case 'message_start':
        usage = { ...e.message?.usage };
        break;
      case 'content_block_start':
        if (e.content_block?.type === 'tool_use') yield calls.start(e.index ?? 0, e.content_block.id ?? `call_${calls.count}`, e.content_block.name ?? '');
        break;
      case 'content_block_delta': {
        const d = e.delta;
        if (d?.type === 'text_delta' && d.text) yield { type: 'text', delta: d.text };
        else if (d?.type === 'input_json_delta') {
          const args = calls.arguments(e.index ?? 0, d.partial_json ?? '');
          if (args) yield args;
        }
        break;
      }
      case 'content_block_stop': {
        const empty = calls.stop(e.index ?? 0);
        if (empty) yield empty;
        break;
      }
      case 'message_delta':
        stopReason = e.delta?.stop_reason ?? stopReason;
        // Its counts are cumulative; any it carries replace message_start's.
        usage = { ...usage, ...Object.fromEntries(Object.entries(e.usage ?? {}).filter(([, v]) => v !== null && v !== undefined)) };
        break;
      case 'message_stop':
        yield { type: 'finish', reason: (stopReason && FINISH[stopReason]) || 'stop' };
        yield { type: 'usage', usage: tokenUsage(usage) };
        break;
      case 'error':
        throw upstreamStreamError(`The model provider reported ${e.error?.type ?? 'an error'} during the response.`);
      default:
        break; // ping, and event types added later
    }
  }
}
