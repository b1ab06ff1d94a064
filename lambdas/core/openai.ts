import * as z from 'zod';
import { GatewayError, badRequest } from './errors';
import { assertCount, exceedsDepth, REQUEST_LIMITS, tooDeep } from './limits';
import { IMAGE_MEDIA_TYPES, type ChatRequest, type ContentPart, type ImageMediaType, type Message, type ToolChoice, type ToolSpec } from './chat';

/*
 * The OpenAI surface: what clients post to /v1/chat/completions, validated with zod and turned into the
 * gateway's one internal request (core/chat). Unknown fields are tolerated (clients send many we don't use);
 * known fields with the wrong type are rejected. Besides OpenAI's own chat-completions shape this accepts what
 * Cursor sends: Anthropic-style content blocks, `system` as blocks, flat and custom tools, and a
 * Responses-shaped body (`input` instead of `messages`).
 */

const Text = z.string();
const AnyObject = z.record(z.string(), z.unknown());

const ImageUrl = z.union([z.string(), z.looseObject({ url: z.string(), detail: z.string().optional() })]);

const Part = z.looseObject({
  type: z.string(),
  text: Text.optional(),
  image_url: ImageUrl.optional(),
  source: z.looseObject({ type: z.string(), media_type: z.string().optional(), data: z.string().optional(), url: z.string().optional() }).optional(),
  // Anthropic tool blocks (Cursor)
  id: z.string().optional(),
  name: z.string().optional(),
  input: z.unknown().optional(),
  tool_use_id: z.string().optional(),
  content: z.unknown().optional(),
  is_error: z.boolean().optional(),
});
type Part = z.infer<typeof Part>;

const Content = z.union([Text, z.array(Part)]).nullish();

const ToolCall = z.looseObject({
  id: z.string(),
  type: z.string().optional(),
  function: z.looseObject({ name: z.string(), arguments: z.string().nullish() }).optional(),
  custom: z.looseObject({ name: z.string(), input: z.string() }).optional(),
});

const ChatMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: Content,
  tool_calls: z.array(ToolCall).nullish(),
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
});

const Tool = z.looseObject({
  type: z.string().optional(),
  name: z.string().optional(),
  description: z.string().nullish(),
  parameters: AnyObject.nullish(),
  input_schema: AnyObject.nullish(),
  function: z.looseObject({ name: z.string(), description: z.string().nullish(), parameters: AnyObject.nullish() }).optional(),
  custom: z.looseObject({ name: z.string(), description: z.string().nullish() }).optional(),
});

const ToolChoiceIn = z.union([
  z.string(),
  z.looseObject({
    type: z.string(),
    name: z.string().optional(),
    function: z.looseObject({ name: z.string() }).optional(),
    custom: z.looseObject({ name: z.string() }).optional(),
  }),
]);

const ResponsesItem = z.looseObject({
  type: z.string().optional(),
  role: z.string().optional(),
  content: z.unknown().optional(),
  call_id: z.string().optional(),
  name: z.string().optional(),
  arguments: z.string().optional(),
  input: z.string().optional(),
  output: z.unknown().optional(),
});

const Positive = z.number().int().positive();

export const ChatCompletionRequest = z.looseObject({
  model: z.string().min(1),
  messages: z.array(ChatMessage).optional(),
  input: z.union([z.string(), z.array(ResponsesItem)]).optional(),
  instructions: z.string().nullish(),
  system: z.union([z.string(), z.array(Part)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  tools: z.array(Tool).nullish(),
  tool_choice: ToolChoiceIn.nullish(),
  max_tokens: Positive.nullish(),
  max_completion_tokens: Positive.nullish(),
  max_output_tokens: Positive.nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  n: z.number().int().nullish(),
  ni: z.looseObject({ privacy_tier: z.string().optional() }).nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** Body text → validated internal request. Throws GatewayError(400) with OpenAI's `param` on bad input. */
export function parseChatRequest(body: string): ChatRequest {
  if (exceedsDepth(body, REQUEST_LIMITS.depth)) throw tooDeep();
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw badRequest('We could not parse the JSON body of your request. The body must be valid JSON.', null, 'invalid_json');
  }
  assertBounded(json);
  const parsed = ChatCompletionRequest.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue.path.map(String).join('.') || null;
    throw badRequest(`Invalid value for '${param ?? 'body'}': ${issue.message}`, param, 'invalid_request');
  }
  const r = parsed.data;
  if (r.n != null && r.n !== 1) throw badRequest('Only n=1 is supported.', 'n', 'unsupported_value');

  const system: string[] = [];
  const messages: Message[] = [];
  if (r.system) system.push(...textsOf(r.system, 'system'));
  if (r.instructions) system.push(r.instructions);
  if (r.messages) mapChatMessages(r.messages, system, messages);
  else if (r.input !== undefined) mapResponsesInput(r.input, system, messages);
  else throw badRequest("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');

  const stop = r.stop == null ? undefined : typeof r.stop === 'string' ? [r.stop] : r.stop;
  return {
    model: r.model,
    stream: r.stream === true,
    includeUsage: r.stream_options?.include_usage === true,
    system: system.filter((s) => s.length > 0),
    messages: mergeTurns(messages),
    tools: (r.tools ?? []).map(toolSpec),
    toolChoice: toolChoice(r.tool_choice),
    maxTokens: r.max_completion_tokens ?? r.max_tokens ?? r.max_output_tokens ?? undefined,
    temperature: r.temperature ?? undefined,
    topP: r.top_p ?? undefined,
    stop: stop?.length ? stop : undefined,
    privacyTier: r.ni?.privacy_tier,
  };
}

const arrayLength = (v: unknown) => (Array.isArray(v) ? v.length : 0);

/** The request's size limits, checked on the parsed JSON before validation, so validation is bounded too. */
function assertBounded(json: unknown): void {
  if (json === null || typeof json !== 'object') return;
  const r = json as Record<string, unknown>;
  const items = Array.isArray(r.messages) ? r.messages : Array.isArray(r.input) ? r.input : [];
  assertCount('messages', items.length, Array.isArray(r.messages) ? 'messages' : 'input');
  assertCount('tools', arrayLength(r.tools), 'tools');
  let parts = arrayLength(r.system);
  for (const m of items) {
    if (m === null || typeof m !== 'object') continue;
    const { content, tool_calls: calls, output } = m as Record<string, unknown>;
    parts += Array.isArray(content) ? content.length : 1;
    parts += arrayLength(calls) + arrayLength(output);
    // A tool result's own parts (Anthropic-style blocks nest them) count too.
    if (Array.isArray(content)) for (const p of content) if (p && typeof p === 'object') parts += arrayLength((p as Record<string, unknown>).content);
  }
  assertCount('contentParts', parts, null);
}

function mapChatMessages(input: z.infer<typeof ChatMessage>[], system: string[], out: Message[]): void {
  input.forEach((m, i) => {
    const param = `messages.${i}`;
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...textsOf(m.content ?? '', `${param}.content`));
        return;
      case 'user':
        out.push({ role: 'user', content: blocksOf(m.content, `${param}.content`) });
        return;
      case 'assistant': {
        const content = blocksOf(m.content, `${param}.content`);
        for (const call of m.tool_calls ?? []) content.push(toolUseOf(call, `${param}.tool_calls`));
        out.push({ role: 'assistant', content });
        return;
      }
      case 'tool':
      case 'function':
        out.push({ role: 'user', content: [toolResult(m.tool_call_id ?? m.name ?? '', m.content, `${param}.content`)] });
        return;
    }
  });
}

function mapResponsesInput(input: string | z.infer<typeof ResponsesItem>[], system: string[], out: Message[]): void {
  if (typeof input === 'string') {
    out.push({ role: 'user', content: [{ type: 'text', text: input }] });
    return;
  }
  input.forEach((item, i) => {
    const param = `input.${i}`;
    switch (item.type ?? 'message') {
      case 'message': {
        const content = Content.safeParse(item.content);
        if (!content.success) throw badRequest(`Invalid content in ${param}.`, `${param}.content`);
        if (item.role === 'system' || item.role === 'developer') system.push(...textsOf(content.data, `${param}.content`));
        else out.push({ role: item.role === 'assistant' ? 'assistant' : 'user', content: blocksOf(content.data, `${param}.content`) });
        return;
      }
      case 'function_call':
        out.push({ role: 'assistant', content: [toolCall(item.call_id, item.name ?? '', parseArguments(item.arguments ?? '', `${param}.arguments`))] });
        return;
      case 'custom_tool_call':
        out.push({ role: 'assistant', content: [toolCall(item.call_id, item.name ?? '', { input: item.input ?? '' })] });
        return;
      case 'function_call_output':
      case 'custom_tool_call_output':
        out.push({ role: 'user', content: [toolResult(item.call_id ?? '', item.output, `${param}.output`)] });
        return;
      default:
        return; // reasoning items and other client-side state carry nothing the model needs
    }
  });
}

/** Turns alternate (most providers require it): consecutive same-role messages (e.g. parallel tool results) become one. */
function mergeTurns(messages: Message[]): Message[] {
  const out: Message[] = [];
  for (const m of messages) {
    if (m.content.length === 0) continue;
    const last = out[out.length - 1];
    // Appended in place: copying the growing turn for every message would be quadratic in their number.
    if (last && last.role === m.role) for (const part of m.content) last.content.push(part);
    else out.push({ role: m.role, content: [...m.content] });
  }
  return out;
}

function textsOf(content: string | Part[] | null | undefined, param: string): string[] {
  if (content == null) return [];
  if (typeof content === 'string') return [content];
  return content.map((p, i) => {
    if (typeof p.text !== 'string') throw badRequest(`Only text parts are allowed in ${param}.`, `${param}.${i}`);
    return p.text;
  });
}

function blocksOf(content: string | Part[] | null | undefined, param: string): ContentPart[] {
  if (content == null) return [];
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : [];
  const blocks: ContentPart[] = [];
  content.forEach((p, i) => {
    const at = `${param}.${i}`;
    switch (p.type) {
      case 'text':
      case 'input_text':
      case 'output_text':
        if (p.text) blocks.push({ type: 'text', text: p.text });
        return;
      case 'image_url':
      case 'input_image':
        blocks.push(imageFromUrl(typeof p.image_url === 'string' ? p.image_url : p.image_url?.url, at));
        return;
      case 'image':
        if (p.source?.type === 'base64' && p.source.data) blocks.push(image(p.source.media_type ?? '', p.source.data, at));
        else blocks.push(imageFromUrl(p.source?.url, at));
        return;
      case 'tool_use':
        blocks.push(toolCall(p.id, p.name ?? '', asObject(p.input ?? {})));
        return;
      case 'tool_result':
        blocks.push(toolResult(p.tool_use_id ?? '', p.content, `${at}.content`, p.is_error));
        return;
      default:
        return; // thinking, redacted_thinking, cache markers…: nothing to forward
    }
  });
  return blocks;
}

const isImageMediaType = (t: string): t is ImageMediaType => (IMAGE_MEDIA_TYPES as readonly string[]).includes(t);

function imageFromUrl(url: string | undefined, param: string): ContentPart {
  const m = url ? /^data:([^;,]+);base64,(.*)$/s.exec(url) : null;
  if (!m) {
    throw badRequest('Only base64 data URLs (data:image/png;base64,…) are supported for images: the gateway does not fetch remote URLs.', param, 'invalid_image_url');
  }
  return image(m[1], m[2], param);
}

function image(mediaType: string, base64: string, param: string): ContentPart {
  const type = mediaType.toLowerCase().replace('image/jpg', 'image/jpeg');
  if (!isImageMediaType(type)) throw badRequest(`Unsupported image type '${mediaType}': use png, jpeg, gif or webp.`, param, 'invalid_image_format');
  return { type: 'image', mediaType: type, data: Buffer.from(base64, 'base64') };
}

function toolUseOf(call: z.infer<typeof ToolCall>, param: string): ContentPart {
  if (call.custom) return toolCall(call.id, call.custom.name, { input: call.custom.input });
  if (!call.function) throw badRequest('A tool call needs a function.', param);
  return toolCall(call.id, call.function.name, parseArguments(call.function.arguments ?? '', param));
}

const toolCall = (id: string | undefined, name: string, input: Record<string, unknown>): ContentPart => ({ type: 'tool_call', id: toolUseId(id), name, input });

/** Tool input is a JSON object for every provider; another JSON value is wrapped as `{value}`. */
const asObject = (value: unknown): Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };

function parseArguments(args: string, param: string): Record<string, unknown> {
  if (args.trim() === '') return {};
  // Arguments are JSON inside a JSON string: the body's depth check did not see into them.
  if (exceedsDepth(args, REQUEST_LIMITS.depth)) throw tooDeep();
  try {
    return asObject(JSON.parse(args));
  } catch {
    throw badRequest('Tool call arguments must be valid JSON.', param, 'invalid_tool_arguments');
  }
}

function toolResult(id: string, content: unknown, param: string, isError?: boolean): ContentPart {
  const parts = typeof content === 'string' || content == null ? [{ text: content ?? '' }] : z.array(Part).safeParse(content).data;
  if (!parts) throw badRequest(`Invalid tool result content in ${param}.`, param);
  const texts = parts.flatMap((p) => ('type' in p && p.type !== 'text' && p.type !== 'input_text' ? [] : [p.text ?? '']));
  return { type: 'tool_result', callId: toolUseId(id), content: texts.length ? texts : [''], isError: isError === true };
}

/** Tool call ids are kept to [a-zA-Z0-9_-]{1,64}, what every provider accepts; other ids are rewritten the same way wherever they appear. */
function toolUseId(id: string | undefined): string {
  if (!id) throw badRequest('A tool call or tool result is missing its id.', 'tool_call_id', 'missing_tool_call_id');
  if (/^[a-zA-Z0-9_-]{1,64}$/.test(id)) return id;
  return id.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64);
}

const EMPTY_SCHEMA = { type: 'object', properties: {} };

/** A custom tool takes one free-form string: the model fills this object's `input`. */
const CUSTOM_INPUT_SCHEMA = { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] };

function toolSpec(t: z.infer<typeof Tool>, i: number): ToolSpec {
  if (t.type === 'custom') {
    // Chat completions nests it ({custom: {name, description}}); the Responses API and Cursor send it flat.
    const description = t.custom?.description ?? t.description;
    return { name: required(t.custom?.name ?? t.name, i), description: description ?? undefined, inputSchema: CUSTOM_INPUT_SCHEMA, custom: true };
  }
  const fn = t.function;
  return {
    name: required(fn?.name ?? t.name, i),
    description: (fn?.description ?? t.description) ?? undefined,
    inputSchema: fn?.parameters ?? t.parameters ?? t.input_schema ?? EMPTY_SCHEMA,
  };
}

function required(name: string | undefined, i: number): string {
  if (!name) throw badRequest('Every tool needs a name.', `tools.${i}`, 'invalid_tool');
  return name;
}

function toolChoice(c: z.infer<typeof ToolChoiceIn> | null | undefined): ToolChoice | undefined {
  if (c == null) return undefined;
  if (typeof c === 'string') {
    if (c === 'auto' || c === 'none' || c === 'required') return c;
    if (c === 'any') return 'required';
    throw new GatewayError(400, `Invalid tool_choice '${c}'.`, 'invalid_request_error', 'invalid_value', 'tool_choice');
  }
  const name = c.function?.name ?? c.custom?.name ?? c.name;
  if ((c.type === 'function' || c.type === 'tool' || c.type === 'custom') && name) return { name };
  if (c.type === 'any' || c.type === 'required') return 'required';
  if (c.type === 'none') return 'none';
  return 'auto';
}
