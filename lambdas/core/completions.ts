import type { FinishReason } from './chat';
import type { CompletionSink } from './stream';
import type { ErrorBody } from './errors';
import type { TokenUsage } from './pricing';

/*
 * What the gateway returns, in OpenAI's chat-completions format. Stream chunks are built from prefixes fixed
 * per request, so a delta costs one JSON.stringify of its own text.
 */

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  /** The part of completion_tokens that was reasoning (Gemini's thoughts), as OpenAI reports its own. */
  completion_tokens_details: { reasoning_tokens: number };
}

/** Converse's inputTokens excludes cache reads and writes; OpenAI's prompt_tokens includes them. */
export function openAIUsage(u: TokenUsage): OpenAIUsage {
  const prompt = u.input + u.cache_read + u.cache_write;
  return { prompt_tokens: prompt, completion_tokens: u.output, total_tokens: prompt + u.output, prompt_tokens_details: { cached_tokens: u.cache_read }, completion_tokens_details: { reasoning_tokens: u.reasoning } };
}

export interface CompletionIdentity {
  id: string;
  created: number;
  model: string;
}

export const sseData = (json: string) => `data: ${json}\n\n`;
export const SSE_DONE = 'data: [DONE]\n\n';
export const sseError = (body: ErrorBody) => sseData(JSON.stringify(body));

/** Formats chat.completion.chunk events; every chunk carries the same id, created and model. */
export class ChunkFormatter implements CompletionSink {
  private readonly head: string;
  private readonly deltaHead: string;

  constructor(private readonly write: (s: string) => void, who: CompletionIdentity) {
    this.head = `data: {"id":${JSON.stringify(who.id)},"object":"chat.completion.chunk","created":${who.created},"model":${JSON.stringify(who.model)},`;
    this.deltaHead = `${this.head}"choices":[{"index":0,"delta":`;
  }

  private delta(delta: string, finish: FinishReason | null = null): void {
    this.write(`${this.deltaHead}${delta},"logprobs":null,"finish_reason":${finish ? `"${finish}"` : 'null'}}]}\n\n`);
  }

  role(): void {
    this.delta('{"role":"assistant","content":""}');
  }

  text(delta: string): void {
    if (delta) this.delta(`{"content":${JSON.stringify(delta)}}`);
  }

  toolCall(index: number, id: string, name: string): void {
    this.delta(`{"tool_calls":[{"index":${index},"id":${JSON.stringify(id)},"type":"function","function":{"name":${JSON.stringify(name)},"arguments":""}}]}`);
  }

  toolArguments(index: number, fragment: string): void {
    if (fragment) this.delta(`{"tool_calls":[{"index":${index},"function":{"arguments":${JSON.stringify(fragment)}}}]}`);
  }

  finish(reason: FinishReason): void {
    this.delta('{}', reason);
  }

  usage(u: TokenUsage): void {
    this.write(`${this.head}"choices":[],"usage":${JSON.stringify(openAIUsage(u))}}\n\n`);
  }
}

type ToolCallOut =
  | { id: string; type: 'function'; function: { name: string; arguments: string } }
  | { id: string; type: 'custom'; custom: { name: string; input: string } };

/** A custom tool's free-form input, from the `{input}` object Converse carries it in. */
function customInput(args: string): string {
  try {
    const input = (JSON.parse(args) as { input?: unknown } | null)?.input;
    return typeof input === 'string' ? input : args;
  } catch {
    return args;
  }
}

/**
 * Accumulates a whole answer for non-streamed requests. Calls to the request's custom tools (`custom`: their
 * names) are answered as custom tool calls; a stream chunk can only carry function calls (OpenAI's chunk schema),
 * so streamed they stay function calls whose arguments are `{"input": …}`.
 */
export class CompletionAccumulator implements CompletionSink {
  private content = '';
  private readonly calls: { id: string; name: string; arguments: string }[] = [];

  constructor(private readonly custom: ReadonlySet<string> = new Set()) {}

  text(delta: string): void {
    this.content += delta;
  }

  toolCall(index: number, id: string, name: string): void {
    this.calls[index] = { id, name, arguments: '' };
  }

  toolArguments(index: number, fragment: string): void {
    this.calls[index].arguments += fragment;
  }

  /** Tool arguments are restored as whole JSON texts, content as a whole string. */
  completion(who: CompletionIdentity, finish: FinishReason, usage: TokenUsage, restore: { text(s: string): string; json(s: string): string }) {
    const toolCalls = this.calls.map((c): ToolCallOut => {
      const args = restore.json(c.arguments);
      return this.custom.has(c.name)
        ? { id: c.id, type: 'custom', custom: { name: c.name, input: customInput(args) } }
        : { id: c.id, type: 'function', function: { name: c.name, arguments: args } };
    });
    return {
      id: who.id,
      object: 'chat.completion' as const,
      created: who.created,
      model: who.model,
      choices: [{
        index: 0,
        message: {
          role: 'assistant' as const,
          content: this.content || toolCalls.length === 0 ? restore.text(this.content) : null,
          refusal: null,
          ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
        },
        logprobs: null,
        finish_reason: finish,
      }],
      usage: openAIUsage(usage),
    };
  }
}
