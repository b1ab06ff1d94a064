import type { ChatRequest, ContentPart, FinishReason, Message, StreamEvent } from '../../core/chat';
import { offersTools } from '../../core/chat';
import { upstreamStreamError } from '../../core/stream';

/*
 * The gateway's request and stream ⇄ OpenAI chat completions, as spoken by OpenAI, Azure OpenAI and the
 * OpenAI-compatible servers (vLLM, Ollama, TGI, Cohere's compatibility API). Only the subset the gateway uses.
 */

type UpstreamPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

type UpstreamMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: UpstreamPart[] }
  | { role: 'assistant'; content: string | null; tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[] }
  | { role: 'tool'; tool_call_id: string; content: string };

export interface ChatCompletionsBody {
  model: string;
  messages: UpstreamMessage[];
  stream: true;
  stream_options: { include_usage: true };
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string[];
  tools?: { type: 'function'; function: { name: string; description?: string; parameters: Record<string, unknown> } }[];
  tool_choice?: 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };
}

export interface BodyOptions {
  /** OpenAI's own API prefers `max_completion_tokens`; Azure's GA api-version and most compatible hosts take `max_tokens`. */
  maxTokensField: 'max_tokens' | 'max_completion_tokens';
}

const textOf = (parts: ContentPart[]) => parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('');

function userMessages(m: Message): UpstreamMessage[] {
  const out: UpstreamMessage[] = [];
  const rest: UpstreamPart[] = [];
  for (const p of m.content) {
    if (p.type === 'tool_result') {
      // OpenAI's tool messages carry no error flag: the model reads the failure in the content.
      out.push({ role: 'tool', tool_call_id: p.callId, content: (p.isError ? 'Error: ' : '') + p.content.join('\n') });
    } else if (p.type === 'text') {
      rest.push({ type: 'text', text: p.text });
    } else if (p.type === 'image') {
      rest.push({ type: 'image_url', image_url: { url: `data:${p.mediaType};base64,${Buffer.from(p.data).toString('base64')}` } });
    }
  }
  // Tool results answer the previous assistant turn, so they come before what the user added.
  if (rest.length) out.push({ role: 'user', content: rest });
  return out;
}

function assistantMessage(m: Message): UpstreamMessage {
  const calls = m.content.flatMap((p) => (p.type === 'tool_call' ? [{ id: p.id, type: 'function' as const, function: { name: p.name, arguments: JSON.stringify(p.input) } }] : []));
  const text = textOf(m.content);
  return { role: 'assistant', content: text || null, ...(calls.length ? { tool_calls: calls } : {}) };
}

/** The request as a streamed chat completion of `upstreamId`. `maxTokens` is already bounded by the model's limit. */
export function toChatCompletionsBody(req: ChatRequest, upstreamId: string, maxTokens: number, opts: BodyOptions): ChatCompletionsBody {
  const body: ChatCompletionsBody = {
    model: upstreamId,
    messages: [
      ...req.system.map((content) => ({ role: 'system' as const, content })),
      ...req.messages.flatMap((m) => (m.role === 'user' ? userMessages(m) : [assistantMessage(m)])),
    ],
    stream: true,
    // Without it the stream reports no usage, and the request could not be billed.
    stream_options: { include_usage: true },
    [opts.maxTokensField]: maxTokens,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.topP !== undefined ? { top_p: req.topP } : {}),
    ...(req.stop ? { stop: req.stop } : {}),
  };
  if (offersTools(req)) {
    body.tools = req.tools.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.inputSchema } }));
    const choice = req.toolChoice;
    if (choice) body.tool_choice = typeof choice === 'object' ? { type: 'function', function: { name: choice.name } } : choice;
  }
  return body;
}

/** One chunk of a streamed chat completion (Azure adds filter results, which carry nothing the client needs). */
export interface ChatCompletionChunk {
  choices?: {
    index?: number;
    delta?: { content?: string | null; tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[] };
    finish_reason?: string | null;
  }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number } | null;
    completion_tokens_details?: { reasoning_tokens?: number } | null;
  } | null;
  error?: { message?: string; code?: string | null };
}

export function finishReason(reason: string): FinishReason {
  switch (reason) {
    case 'length':
      return 'length';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    case 'content_filter':
      return 'content_filter';
    default:
      return 'stop';
  }
}

/**
 * Parsed chunks (the SSE `data` payloads, `[DONE]` excluded) as the gateway's stream events. Chunks without
 * choices (Azure's leading `prompt_filter_results`, the final usage chunk) yield only their usage.
 */
export async function* fromChatCompletionChunks(chunks: AsyncIterable<ChatCompletionChunk>): AsyncGenerator<StreamEvent> {
  /** Upstream tool-call index → the gateway's, in the order calls start. */
  const toolIndex = new Map<number, number>();
  const withArguments = new Set<number>();
  for await (const chunk of chunks) {
    if (chunk.error) throw upstreamStreamError(`The model provider reported an error during the response: ${chunk.error.message ?? chunk.error.code ?? 'unknown'}`);
    const choice = chunk.choices?.[0];
    const delta = choice?.delta;
    if (delta?.content) yield { type: 'text', delta: delta.content };
    for (const call of delta?.tool_calls ?? []) {
      const upstream = call.index ?? 0;
      let index = toolIndex.get(upstream);
      if (index === undefined) {
        index = toolIndex.size;
        toolIndex.set(upstream, index);
        yield { type: 'tool_call', index, id: call.id ?? `call_${index}`, name: call.function?.name ?? '' };
      }
      if (call.function?.arguments) {
        withArguments.add(index);
        yield { type: 'tool_arguments', index, delta: call.function.arguments };
      }
    }
    if (choice?.finish_reason) {
      // A call that streamed no arguments still gets a JSON object: clients parse what they accumulated.
      for (const index of toolIndex.values()) if (!withArguments.has(index)) yield { type: 'tool_arguments', index, delta: '{}' };
      yield { type: 'finish', reason: finishReason(choice.finish_reason) };
    }
    if (chunk.usage) {
      const u = chunk.usage;
      const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
      yield {
        type: 'usage',
        usage: { input: Math.max(0, (u.prompt_tokens ?? 0) - cached), output: u.completion_tokens ?? 0, cache_read: cached, cache_write: 0, reasoning: u.completion_tokens_details?.reasoning_tokens ?? 0 },
      };
    }
  }
}
