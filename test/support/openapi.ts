import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** OpenAI's own schemas (a copy in test/fixtures/openai-openapi, with its MIT licence) with a draft 2020-12 validator. */
const SPEC_FILE = resolve(__dirname, '../fixtures/openai-openapi/chat-subset.json');
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('unixtime', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= 0 }); // an OpenAI extension

/** OpenAPI 3.0's `nullable` is not JSON Schema: rewrite it as the 2020-12 equivalent. */
function jsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(jsonSchema);
  if (!node || typeof node !== 'object') return node;
  const { nullable, ...rest } = node as Record<string, unknown>;
  const out = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, jsonSchema(v)]));
  if (nullable !== true) return out;
  if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  if (typeof out.type === 'string') return { ...out, type: [out.type, 'null'] };
  return { anyOf: [out, { type: 'null' }] };
}

ajv.addSchema({ ...(jsonSchema(JSON.parse(readFileSync(SPEC_FILE, 'utf8'))) as object), $id: 'openai' });

export type OpenAISchema = 'CreateChatCompletionResponse' | 'CreateChatCompletionStreamResponse' | 'ListModelsResponse' | 'ErrorResponse';

/** Why `data` is not a valid instance of the named OpenAI schema, or undefined if it is. */
function invalid(schema: OpenAISchema, data: unknown): string | undefined {
  const validate = ajv.getSchema(`openai#/components/schemas/${schema}`);
  if (!validate) return `no schema ${schema}`;
  if (!validate(data)) return `not a valid ${schema}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(data).slice(0, 2000)}`;
}

/** Throws with ajv's errors unless `data` is a valid instance of the named OpenAI schema. */
export function assertOpenAI(schema: OpenAISchema, data: unknown): void {
  const problem = invalid(schema, data);
  if (problem) throw new Error(problem);
}

/*
 * Validation of everything the gateway's OpenAI endpoints send, as the test reads it. Failures are collected and
 * fail the running test in afterEach, not thrown into the body: the openai client turns an unreadable error body
 * into a message, so a thrown failure could pass unseen behind `rejects.toBeInstanceOf(...)`.
 */
const OPENAI_PATH = /\/v1\/(chat\/completions|models)$/;
const failures: string[] = [];

afterEach(() => {
  const found = failures.splice(0);
  if (found.length) throw new Error(`the gateway answered outside OpenAI's schemas:\n\n${found.join('\n\n')}`);
});

function check(where: string, json: string, schemaOf: (data: object) => OpenAISchema): void {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    failures.push(`${where}: not JSON\n${json.slice(0, 2000)}`);
    return;
  }
  const problem = invalid(schemaOf(Object(data)), data);
  if (problem) failures.push(`${where}: ${problem}`);
}

/** Validates each SSE event once it is complete: chunks, or a final error event; `[DONE]` ends the stream. */
function sseChecker(where: string) {
  let buffered = '';
  return (text: string, end: boolean) => {
    const events = (buffered + text).split('\n\n');
    buffered = end ? '' : events.pop()!;
    for (const event of events) {
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        check(where, line.slice('data: '.length), (data) => ('error' in data ? 'ErrorResponse' : 'CreateChatCompletionStreamResponse'));
      }
    }
  };
}

/** A whole JSON body, validated once it has all been read. */
function bodyChecker(where: string, schema: OpenAISchema) {
  let body = '';
  return (text: string, end: boolean) => {
    body += text;
    if (end) check(where, body, () => schema);
  };
}

/**
 * `fetch`, validating what /v1/chat/completions and /v1/models answer — error bodies, completions, model lists and
 * every streamed chunk — as the caller reads it (a stream the caller abandons is checked as far as it was read).
 */
export const fetchOpenAI: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const request = input instanceof Request ? input : undefined;
  const { pathname } = new URL(request?.url ?? String(input));
  const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
  if (!OPENAI_PATH.test(pathname) || method === 'OPTIONS' || !res.body) return res;
  const where = `${method} ${pathname} → ${res.status}`;
  const feed = !res.ok
    ? bodyChecker(where, 'ErrorResponse')
    : res.headers.get('content-type')?.startsWith('text/event-stream')
      ? sseChecker(where)
      : bodyChecker(where, pathname.endsWith('/models') ? 'ListModelsResponse' : 'CreateChatCompletionResponse');
  const decoder = new TextDecoder();
  const body = res.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      controller.enqueue(chunk);
      feed(decoder.decode(chunk, { stream: true }), false);
    },
    flush() {
      feed(decoder.decode(), true);
    },
  }));
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
};
