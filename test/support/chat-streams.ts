import OpenAI from 'openai';

/** What a streamed completion came to, read the way a client reads it. */
type Chunk = OpenAI.Chat.Completions.ChatCompletionChunk;

export async function collectChunks(stream: AsyncIterable<Chunk>): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

export const streamedText = (chunks: Chunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');

export const finishReasonOf = (chunks: Chunk[]) => chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason;

/** The tool calls of a stream by index, their argument fragments joined. */
export function streamedToolCalls(chunks: Chunk[]): Map<number, { id: string; name: string; args: string }> {
  const calls = new Map<number, { id: string; name: string; args: string }>();
  for (const c of chunks) {
    for (const d of c.choices[0]?.delta.tool_calls ?? []) {
      const call = calls.get(d.index) ?? { id: '', name: '', args: '' };
      calls.set(d.index, { id: d.id ?? call.id, name: d.function?.name ?? call.name, args: call.args + (d.function?.arguments ?? '') });
    }
  }
  return calls;
}

/**
 * The next turn of a tool round trip, streamed: the question, the assistant's `calls`, and their `results`
 * (`[call id, content]`, in the order given).
 */
export async function streamToolResults(
  openai: OpenAI,
  request: { model: string; tools: OpenAI.Chat.Completions.ChatCompletionTool[]; question: string },
  calls: Map<number, { id: string; name: string; args: string }>,
  results: [string, string][],
): Promise<Chunk[]> {
  return collectChunks(await openai.chat.completions.create({
    model: request.model, stream: true, tools: request.tools,
    messages: [
      { role: 'user', content: request.question },
      { role: 'assistant', content: null, tool_calls: [...calls.values()].map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.args } })) },
      ...results.map(([id, content]) => ({ role: 'tool' as const, tool_call_id: id, content })),
    ],
  }));
}

/** How the gateway answers an upstream's HTTP status: one classification for every provider (PROVIDERS.md). */
export const ANSWER_TO_UPSTREAM_STATUS: Record<number, { status: number; code: string }> = {
  400: { status: 400, code: 'upstream_validation_error' },
  401: { status: 502, code: 'upstream_model_unavailable' },
  403: { status: 502, code: 'upstream_model_unavailable' },
  429: { status: 429, code: 'upstream_throttled' },
  503: { status: 503, code: 'upstream_unavailable' },
  529: { status: 503, code: 'upstream_unavailable' },
};

/** The error the gateway answered a (non-streamed) request with. */
export async function refusal(openai: OpenAI, model: string, content: string): Promise<{ status: number | undefined; code: string | null | undefined; message: string }> {
  const err = await openai.chat.completions.create({ model, messages: [{ role: 'user', content }] }).then(() => null, (e: unknown) => e);
  if (!(err instanceof OpenAI.APIError)) throw new Error(`expected an API error, got ${String(err)}`);
  return { status: err.status, code: err.code, message: err.message };
}
