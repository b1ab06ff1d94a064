import type { Block, ChatRequest, FinishReason, Message } from './chat';
import { GatewayError } from './errors';
import type { TokenUsage } from './pricing';

/*
 * OpenAI ⇄ Bedrock Converse. The Converse shapes below are the subset the gateway uses, declared here (the core
 * imports no AWS SDK) and structurally compatible with @aws-sdk/client-bedrock-runtime's input and events.
 */

export interface ConverseInput {
  modelId: string;
  messages: Message[];
  system?: { text: string }[];
  inferenceConfig: { maxTokens: number; temperature?: number; topP?: number; stopSequences?: string[] };
  toolConfig?: {
    tools: { toolSpec: { name: string; description?: string; inputSchema: { json: Record<string, unknown> } } }[];
    toolChoice?: { auto: Record<string, never> } | { any: Record<string, never> } | { tool: { name: string } };
  };
}

/** Whether the model is offered tools (with tool_choice "none" none are sent). */
export const offersTools = (req: ChatRequest) => req.tools.length > 0 && req.toolChoice !== 'none';

/** The request as Converse takes it. `maxTokens` is already bounded by the model's limit. */
export function toConverseInput(req: ChatRequest, upstreamId: string, maxTokens: number): ConverseInput {
  const sendTools = offersTools(req);
  const hasToolBlocks = req.messages.some((m) => m.content.some((b) => 'toolUse' in b || 'toolResult' in b));
  // Converse rejects tool blocks in history without a toolConfig; with tool_choice "none" (or no tools) the
  // history is kept, as text, so the model cannot call a tool and the conversation stays valid.
  const messages = hasToolBlocks && !sendTools ? req.messages.map(toolBlocksAsText) : req.messages;
  const input: ConverseInput = {
    modelId: upstreamId,
    messages,
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

function toolBlocksAsText(m: Message): Message {
  return {
    role: m.role,
    content: m.content.map((b): Block => {
      if ('toolUse' in b) return { text: `[called tool ${b.toolUse.name} with ${JSON.stringify(b.toolUse.input)}]` };
      if ('toolResult' in b) return { text: `[tool result: ${b.toolResult.content.map((c) => c.text).join('\n')}]` };
      return b;
    }),
  };
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

/** Where translated output goes: the SSE writer when streaming, an accumulator otherwise. */
export interface CompletionSink {
  text(delta: string): void;
  toolCall(index: number, id: string, name: string): void;
  toolArguments(index: number, fragment: string): void;
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

/** Thrown when the provider's stream breaks: before the first byte it becomes an HTTP error, after it a final SSE error event. */
export const upstreamStreamError = (message: string) => new GatewayError(502, message, 'api_error', 'upstream_stream_error');

/**
 * Translates one ConverseStream into completion deltas. Tool calls get OpenAI indexes in the order they start
 * (stable across their argument deltas, parallel calls included).
 */
export class ConverseStreamReader {
  finish: FinishReason | null = null;
  usage: TokenUsage | null = null;
  private readonly toolIndex = new Map<number, number>();
  private readonly withArguments = new Set<number>();

  constructor(private readonly sink: CompletionSink) {}

  handle(e: ConverseStreamEvent): void {
    if (e.contentBlockDelta) {
      const d = e.contentBlockDelta.delta;
      if (d?.text) this.sink.text(d.text);
      else if (d?.toolUse?.input) {
        const index = this.toolIndex.get(e.contentBlockDelta.contentBlockIndex ?? 0);
        if (index !== undefined) {
          this.withArguments.add(index);
          this.sink.toolArguments(index, d.toolUse.input);
        }
      }
    } else if (e.contentBlockStart?.start?.toolUse) {
      const t = e.contentBlockStart.start.toolUse;
      const index = this.toolIndex.size;
      this.toolIndex.set(e.contentBlockStart.contentBlockIndex ?? 0, index);
      this.sink.toolCall(index, t.toolUseId ?? `call_${index}`, t.name ?? '');
    } else if (e.contentBlockStop) {
      // A call that streamed no arguments still gets a JSON object: clients parse what they accumulated.
      const index = this.toolIndex.get(e.contentBlockStop.contentBlockIndex ?? 0);
      if (index !== undefined && !this.withArguments.has(index)) this.sink.toolArguments(index, '{}');
    } else if (e.messageStop) {
      this.finish = finishReason(e.messageStop.stopReason);
    } else if (e.metadata?.usage) {
      const u = e.metadata.usage;
      this.usage = { input: u.inputTokens ?? 0, output: u.outputTokens ?? 0, cache_read: u.cacheReadInputTokens ?? 0, cache_write: u.cacheWriteInputTokens ?? 0 };
    } else {
      const failure = Object.keys(e).find((k) => k.endsWith('Exception'));
      if (failure) throw upstreamStreamError(`The model provider reported ${failure} during the response.`);
    }
  }

  /** A stream that ended without messageStop was cut off: never report it as a normal finish. */
  complete(): FinishReason {
    if (!this.finish) throw upstreamStreamError('The model provider ended the response stream before it was complete.');
    return this.finish;
  }
}
