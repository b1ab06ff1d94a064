/**
 * The gateway's one internal chat request, whatever shape the client posted. Content blocks follow Bedrock
 * Converse's structure (so the mapping to a provider is shallow) but are plain types: no AWS import here.
 */
export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp';

export type Block =
  | { text: string }
  | { image: { format: ImageFormat; source: { bytes: Uint8Array } } }
  | { toolUse: { toolUseId: string; name: string; input: unknown } }
  | { toolResult: { toolUseId: string; content: { text: string }[]; status?: 'error' } };

export interface Message {
  role: 'user' | 'assistant';
  content: Block[];
}

export interface ToolSpec {
  name: string;
  description?: string;
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

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';
