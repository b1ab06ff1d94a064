import type { TokenUsage } from './pricing';

/**
 * The gateway's own chat request and stream, whatever shape the client posted and whichever upstream API serves
 * it. Client shapes map into these (core/openai); each provider in lambdas/providers/ maps them out to its API
 * and its stream back into StreamEvents. Plain types: no AWS, no HTTP.
 */
export const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;
export type ImageMediaType = (typeof IMAGE_MEDIA_TYPES)[number];

export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image'; mediaType: ImageMediaType; data: Uint8Array }
  /** A call the assistant made; `input` is a JSON object. */
  | { type: 'tool_call'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; callId: string; content: string[]; isError: boolean };

export interface Message {
  role: 'user' | 'assistant';
  content: ContentPart[];
}

export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the call's input object. */
  inputSchema: Record<string, unknown>;
  /** A free-form (custom) tool: its calls carry `{input: string}`, answered as custom tool calls where possible. */
  custom?: true;
}

export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

export interface ChatRequest {
  /** The NI model id exactly as the client sent it (echoed back in every response). */
  model: string;
  stream: boolean;
  includeUsage: boolean;
  system: string[];
  /** Strictly alternating turns, starting with whichever role the client started with. */
  messages: Message[];
  tools: ToolSpec[];
  toolChoice?: ToolChoice;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  /** `ni.privacy_tier` from the body, if any (the X-NI-Privacy-Tier header is the other way to ask). */
  privacyTier?: string;
}

/** Whether the model is offered tools (with tool_choice "none" none are sent). */
export const offersTools = (req: ChatRequest) => req.tools.length > 0 && req.toolChoice !== 'none';

/**
 * A tool call or result as plain text, for an upstream that takes tool blocks in history only alongside tool
 * definitions: with tool_choice "none" (or no tools) the history is kept, so the conversation stays valid.
 */
export function toolPartAsText(p: Extract<ContentPart, { type: 'tool_call' | 'tool_result' }>): string {
  return p.type === 'tool_call' ? `[called tool ${p.name} with ${JSON.stringify(p.input)}]` : `[tool result: ${p.content.join('\n')}]`;
}

export const hasImages = (req: ChatRequest) => req.messages.some((m) => m.content.some((p) => p.type === 'image'));

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

/**
 * One event of an answer as the gateway relays it. Tool calls are numbered in the order they start (OpenAI's
 * `index`), stable across their argument deltas, parallel calls included. A provider's stream ends with `finish`
 * and, when the provider reports it, `usage`; a stream that ends without `finish` was cut off.
 */
export type StreamEvent =
  | { type: 'text'; delta: string }
  | { type: 'tool_call'; index: number; id: string; name: string }
  | { type: 'tool_arguments'; index: number; delta: string }
  | { type: 'finish'; reason: FinishReason }
  | { type: 'usage'; usage: TokenUsage };
