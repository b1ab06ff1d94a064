import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * What the HTTP stand-ins of the fetch-based providers (local/anthropic-standin.ts, local/vertex-standin.ts)
 * share: a loopback server, the `ni-standin:` directives that script an answer, and the answer itself. Each
 * stand-in maps its provider's request into a Turn and the Answer back out in its provider's wire format.
 *
 * Directives (in the last user message's text or the system text; an unknown one is refused with a 400):
 *   (none)               "Hello from the <provider> stand-in." in word deltas
 *   tool_calls=N         with tools offered: N calls cycling through them, input {"text": last user text}
 *   status=CODE          answer HTTP CODE (429, 500, 503, 529, 400…) with the provider's error body
 *   fail_mid_stream      half the answer, then the provider's in-stream error
 *   cache_read=N, cache_write=N, thoughts=N   reported in usage
 * A last user message carrying tool results is answered "Tool results: " + their text joined by " | ".
 */

export interface Turn {
  /** Text of the system prompt and of the last user message: where directives are read. */
  scriptTexts: string[];
  /** The last user message's text. */
  userText: string;
  /** Tool results in the last user message. */
  toolResults: string[];
  /** Names of the tools offered (empty when tools are off). */
  tools: string[];
  /** Every prompt character counted for the input-token estimate. */
  promptChars: number;
  maxTokens: number;
}

export interface Script {
  toolCalls: number;
  status?: number;
  failMidStream: boolean;
  cacheRead: number;
  cacheWrite: number;
  thoughts: number;
}


const DIRECTIVE_RE = /ni-standin:([a-z_]+)(?:=([0-9]+))?/g;
const NUMERIC: Record<string, keyof Script> = { tool_calls: 'toolCalls', status: 'status', cache_read: 'cacheRead', cache_write: 'cacheWrite', thoughts: 'thoughts' };

export function parseScript(texts: string[]): Script {
  const script: Script = { toolCalls: 0, failMidStream: false, cacheRead: 0, cacheWrite: 0, thoughts: 0 };
  for (const text of texts) {
    for (const [, name, value] of text.matchAll(DIRECTIVE_RE)) {
      if (name === 'fail_mid_stream') script.failMidStream = true;
      else if (NUMERIC[name] && value !== undefined) Object.assign(script, { [NUMERIC[name]]: Number(value) });
      else throw new Refusal(400, `unknown or incomplete directive ni-standin:${name}`);
    }
  }
  return script;
}

/** An HTTP error a stand-in answers with, in its provider's error shape. */
export class Refusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The turn's script and answer; a bad directive or a scripted status is thrown as a Refusal. */
export function scriptedAnswer(turn: Turn, provider: string): { script: Script; answer: Answer } {
  const script = parseScript(turn.scriptTexts);
  if (script.status) throw new Refusal(script.status, `scripted status ${script.status}`);
  return { script, answer: answer(turn, script, provider) };
}

export interface ToolCall {
  name: string;
  input: { text: string };
}

export interface Answer {
  /** Text deltas (words with their trailing space). */
  deltas: string[];
  toolCalls: ToolCall[];
  /** The answer was cut by the output budget. */
  truncated: boolean;
  inputTokens: number;
  outputTokens: number;
}

const tokens = (chars: number) => Math.ceil(chars / 4);

/** The deterministic answer to a turn: tool calls when scripted and tools are offered, else text. */
export function answer(turn: Turn, script: Script, provider: string): Answer {
  const toolCalls: ToolCall[] = [];
  if (script.toolCalls > 0 && turn.tools.length > 0 && turn.toolResults.length === 0) {
    for (let i = 0; i < script.toolCalls; i++) toolCalls.push({ name: turn.tools[i % turn.tools.length], input: { text: turn.userText } });
  }
  const text = toolCalls.length ? '' : turn.toolResults.length ? `Tool results: ${turn.toolResults.join(' | ')}` : `Hello from the ${provider} stand-in.`;
  const words = text ? text.split(/(?<= )/) : [];
  const truncated = words.length > turn.maxTokens;
  const deltas = words.slice(0, turn.maxTokens);
  const outputChars = deltas.join('').length + toolCalls.reduce((n, c) => n + JSON.stringify(c.input).length, 0);
  return { deltas, toolCalls, truncated, inputTokens: tokens(turn.promptChars), outputTokens: Math.max(1, tokens(outputChars)) };
}

export async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface HttpStandIn {
  url: string;
  close(): Promise<void>;
}

/** A stand-in as tests use it: where it listens and what it received. */
export interface RecordingStandIn<R> extends HttpStandIn {
  requests: R[];
  /** Forgets what was received. */
  reset(): void;
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * A loopback HTTP/1.1 server on an OS-assigned port (unless `port` is given). A Refusal thrown by the handler is
 * answered with `refuse`, in the provider's error shape.
 */
export async function listen(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
  refuse: (res: http.ServerResponse, status: number, message: string) => void,
  port = 0,
  host = '127.0.0.1',
): Promise<HttpStandIn> {
  const server = http.createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      if (res.headersSent) res.end();
      else if (err instanceof Refusal) refuse(res, err.status, err.message);
      else refuse(res, 500, String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${bound}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };
