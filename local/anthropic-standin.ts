/**
 * Local Anthropic stand-in: a loopback server speaking the Messages API's streaming wire protocol
 * (POST /v1/messages with `stream: true`: message_start, content_block_start/delta/stop with text_delta and
 * input_json_delta, ping, message_delta, message_stop, error events) so the gateway's Anthropic client runs against
 * it unchanged. It checks `x-api-key` and `anthropic-version`, answers errors in Anthropic's error shape, and
 * records every request. Answers are scripted by the directives in local/standin-script.ts.
 */
import { randomUUID } from 'node:crypto';
import type * as http from 'node:http';
import { listen, readBody, type RecordingStandIn, scriptedAnswer, sendJson, SSE_HEADERS, type Turn } from './standin-script';

export interface AnthropicRecordedRequest {
  path: string;
  /** The x-api-key sent (the stand-in's own key, never a real one). */
  apiKey: string | undefined;
  version: string | undefined;
  /** Parsed JSON as received. */
  body: any;
}

export interface AnthropicStandIn extends RecordingStandIn<AnthropicRecordedRequest> {
  /** The API key it accepts. */
  apiKey: string;
  /** Accepts these keys too (a customer's own, in tests of BYOK). */
  accept(...apiKeys: string[]): void;
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error',
  413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 529: 'overloaded_error',
};

function sendError(res: http.ServerResponse, status: number, message: string): void {
  sendJson(res, status, { type: 'error', error: { type: ERROR_TYPES[status] ?? 'api_error', message } });
}

type Block = { type?: string; text?: unknown; input?: unknown; content?: unknown };
const asArray = (v: unknown): Block[] => (Array.isArray(v) ? (v as Block[]) : []);
const textOf = (v: unknown): string => (typeof v === 'string' ? v : asArray(v).map((b) => (typeof b.text === 'string' ? b.text : '')).join(''));

function turnOf(body: any): Turn {
  const messages: { role?: string; content?: unknown }[] = Array.isArray(body.messages) ? body.messages : [];
  const last = messages[messages.length - 1];
  const lastBlocks = typeof last?.content === 'string' ? [{ type: 'text', text: last.content }] : asArray(last?.content);
  const userText = lastBlocks.filter((b) => b.type === 'text').map((b) => String(b.text)).join('');
  const systemText = textOf(body.system);
  const blocks = messages.flatMap((m) => (typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : asArray(m.content)));
  const promptChars = systemText.length + blocks.reduce((n, b) => n + (b.type === 'tool_use' ? JSON.stringify(b.input).length : b.type === 'tool_result' ? textOf(b.content).length : textOf([b]).length), 0);
  return {
    scriptTexts: [systemText, userText],
    userText,
    toolResults: last?.role === 'user' ? lastBlocks.filter((b) => b.type === 'tool_result').map((b) => textOf(b.content)) : [],
    tools: body.tool_choice?.type === 'none' ? [] : asArray(body.tools).map((t) => String((t as { name?: unknown }).name)),
    promptChars,
    maxTokens: Number(body.max_tokens),
  };
}

export async function startAnthropicStandIn(opts: { port?: number; apiKey?: string } = {}): Promise<AnthropicStandIn> {
  const apiKey = opts.apiKey ?? `sk-ant-standin-${randomUUID()}`;
  const requests: AnthropicRecordedRequest[] = [];
  const accepted = new Set([apiKey]);

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (req.method !== 'POST' || req.url !== '/v1/messages') return sendError(res, 404, `no route ${req.method} ${req.url}`);
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      return sendError(res, 400, 'the body is not JSON');
    }
    const header = (name: string) => req.headers[name] as string | undefined;
    requests.push({ path: req.url, apiKey: header('x-api-key'), version: header('anthropic-version'), body });
    if (!accepted.has(header('x-api-key') ?? '')) return sendError(res, 401, 'invalid x-api-key');
    if (!header('anthropic-version')) return sendError(res, 400, 'anthropic-version: header is required');
    if (body.stream !== true) return sendError(res, 400, 'this stand-in serves streamed requests only');
    if (!(Number(body.max_tokens) >= 1)) return sendError(res, 400, 'max_tokens: Field required');
    const { script, answer: a } = scriptedAnswer(turnOf(body), 'Anthropic');

    res.writeHead(200, SSE_HEADERS);
    const send = (type: string, data: object) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    send('message_start', {
      message: {
        id: `msg_${randomUUID().replaceAll('-', '')}`, type: 'message', role: 'assistant', content: [], model: body.model, stop_reason: null, stop_sequence: null,
        usage: { input_tokens: a.inputTokens, cache_creation_input_tokens: script.cacheWrite, cache_read_input_tokens: script.cacheRead, output_tokens: 1 },
      },
    });
    send('ping', {});
    let index = 0;
    if (a.deltas.length) {
      send('content_block_start', { index, content_block: { type: 'text', text: '' } });
      const upTo = script.failMidStream ? Math.ceil(a.deltas.length / 2) : a.deltas.length;
      for (const text of a.deltas.slice(0, upTo)) send('content_block_delta', { index, delta: { type: 'text_delta', text } });
      if (script.failMidStream) {
        send('error', { error: { type: 'overloaded_error', message: 'Overloaded' } });
        res.end();
        return;
      }
      send('content_block_stop', { index: index++ });
    }
    for (const call of a.toolCalls) {
      send('content_block_start', { index, content_block: { type: 'tool_use', id: `toolu_${randomUUID().replaceAll('-', '').slice(0, 24)}`, name: call.name, input: {} } });
      // Anthropic streams a call's input as JSON fragments; two halves show that they are concatenated.
      const json = JSON.stringify(call.input);
      const half = Math.ceil(json.length / 2);
      for (const partial_json of ['', json.slice(0, half), json.slice(half)]) send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } });
      send('content_block_stop', { index: index++ });
    }
    const stop_reason = a.toolCalls.length ? 'tool_use' : a.truncated ? 'max_tokens' : 'end_turn';
    send('message_delta', { delta: { stop_reason, stop_sequence: null }, usage: { output_tokens: a.outputTokens } });
    send('message_stop', {});
    res.end();
  }

  const server = await listen(handle, sendError, opts.port);
  return {
    url: server.url,
    apiKey,
    accept: (...keys) => keys.forEach((k) => accepted.add(k)),
    requests,
    reset: () => void requests.splice(0),
    close: server.close,
  };
}
