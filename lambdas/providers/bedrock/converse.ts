import type { ChatRequest, ContentPart, FinishReason, Message, StreamEvent } from '../../core/chat';
import { offersTools, toolPartAsText } from '../../core/chat';
import { upstreamStreamError } from '../../core/stream';

/*
 * The gateway's request and stream ⇄ Bedrock Converse. The Converse shapes are the subset the gateway uses,
 * structurally compatible with @aws-sdk/client-bedrock-runtime's input and events.
 */

type ConverseBlock =
  | { text: string }
  | { image: { format: string; source: { bytes: Uint8Array } } }
  | { toolUse: { toolUseId: string; name: string; input: unknown } }
  | { toolResult: { toolUseId: string; content: { text: string }[]; status?: 'error' } };

export interface ConverseInput {
  modelId: string;
  messages: { role: Message['role']; content: ConverseBlock[] }[];
  system?: { text: string }[];
  inferenceConfig: { maxTokens: number; temperature?: number; topP?: number; stopSequences?: string[] };
  toolConfig?: {
    tools: { toolSpec: { name: string; description?: string; inputSchema: { json: Record<string, unknown> } } }[];
    toolChoice?: { auto: Record<string, never> } | { any: Record<string, never> } | { tool: { name: string } };
  };
}

function block(p: ContentPart, toolsAsText: boolean): ConverseBlock {
  switch (p.type) {
    case 'text':
      return { text: p.text };
    case 'image':
      return { image: { format: p.mediaType.slice('image/'.length), source: { bytes: p.data } } };
    case 'tool_call':
      return toolsAsText ? { text: toolPartAsText(p) } : { toolUse: { toolUseId: p.id, name: p.name, input: p.input } };
    case 'tool_result':
      return toolsAsText
        ? { text: toolPartAsText(p) }
        : { toolResult: { toolUseId: p.callId, content: p.content.map((text) => ({ text })), ...(p.isError ? { status: 'error' as const } : {}) } };
  }
}

/** The request as Converse takes it. `maxTokens` is already bounded by the model's limit. */
export function toConverseInput(req: ChatRequest, upstreamId: string, maxTokens: number): ConverseInput {
  const sendTools = offersTools(req);
  // Converse rejects tool blocks in history without a toolConfig; with tool_choice "none" (or no tools) the
  // history is kept, as text, so the model cannot call a tool and the conversation stays valid.
  const input: ConverseInput = {
    modelId: upstreamId,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content.map((p) => block(p, !sendTools)) })),
    inferenceConfig: {
      maxTokens,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.topP !== undefined ? { topP: req.topP } : {}),
      ...(req.stop ? { stopSequences: req.stop } : {}),
    },
  };
  if (req.system.length) input.system = req.system.map((text) => ({ text }));
  if (sendTools) {
    const choice = req.toolChoice;
    input.toolConfig = {
      tools: req.tools.map((t) => ({ toolSpec: { name: t.name, ...(t.description ? { description: t.description } : {}), inputSchema: { json: t.inputSchema } } })),
      ...(choice === 'required' ? { toolChoice: { any: {} } } : typeof choice === 'object' ? { toolChoice: { tool: { name: choice.name } } } : {}),
    };
  }
  return input;
}

/** ConverseStream output events (one member set per event). */
export interface ConverseStreamEvent {
  messageStart?: { role?: string };
  contentBlockStart?: { contentBlockIndex?: number; start?: { toolUse?: { toolUseId?: string; name?: string } } };
  contentBlockDelta?: { contentBlockIndex?: number; delta?: { text?: string; toolUse?: { input?: string } } };
  contentBlockStop?: { contentBlockIndex?: number };
  messageStop?: { stopReason?: string };
  metadata?: { usage?: { inputTokens?: number; outputTokens?: number; cacheReadInputTokens?: number; cacheWriteInputTokens?: number } };
}

export function finishReason(stopReason: string | undefined): FinishReason {
  switch (stopReason) {
    case 'tool_use':
      return 'tool_calls';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'content_filtered':
    case 'guardrail_intervened':
      return 'content_filter';
    default:
      return 'stop'; // end_turn, stop_sequence
  }
}

/** One ConverseStream as the gateway's stream events. Tool calls are numbered in the order they start. */
export async function* fromConverseStream(events: AsyncIterable<ConverseStreamEvent>): AsyncGenerator<StreamEvent> {
  const toolIndex = new Map<number, number>();
  const withArguments = new Set<number>();
  for await (const e of events) {
    if (e.contentBlockDelta) {
      const d = e.contentBlockDelta.delta;
      if (d?.text) yield { type: 'text', delta: d.text };
      else if (d?.toolUse?.input) {
        const index = toolIndex.get(e.contentBlockDelta.contentBlockIndex ?? 0);
        if (index !== undefined) {
          withArguments.add(index);
          yield { type: 'tool_arguments', index, delta: d.toolUse.input };
        }
      }
    } else if (e.contentBlockStart?.start?.toolUse) {
      const t = e.contentBlockStart.start.toolUse;
      const index = toolIndex.size;
      toolIndex.set(e.contentBlockStart.contentBlockIndex ?? 0, index);
      yield { type: 'tool_call', index, id: t.toolUseId ?? `call_${index}`, name: t.name ?? '' };
    } else if (e.contentBlockStop) {
      // A call that streamed no arguments still gets a JSON object: clients parse what they accumulated.
      const index = toolIndex.get(e.contentBlockStop.contentBlockIndex ?? 0);
      if (index !== undefined && !withArguments.has(index)) yield { type: 'tool_arguments', index, delta: '{}' };
    } else if (e.messageStop) {
      yield { type: 'finish', reason: finishReason(e.messageStop.stopReason) };
    } else if (e.metadata?.usage) {
      const u = e.metadata.usage;
      yield { type: 'usage', usage: { input: u.inputTokens ?? 0, output: u.outputTokens ?? 0, cache_read: u.cacheReadInputTokens ?? 0, cache_write: u.cacheWriteInputTokens ?? 0, reasoning: 0 } };
    } else {
      const failure = Object.keys(e).find((k) => k.endsWith('Exception'));
      if (failure) throw upstreamStreamError(`The model provider reported ${failure} during the response.`);
    }
  }
}
