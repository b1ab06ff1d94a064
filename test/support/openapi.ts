import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** OpenAI's own schemas (shared/openai-openapi, beside the repository) with a draft 2020-12 validator. */
const SPEC_FILE = resolve(__dirname, '../../../shared/openai-openapi/chat-subset.json');
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

/** Throws with ajv's errors unless `data` is a valid instance of the named OpenAI schema. */
export function assertOpenAI(schema: OpenAISchema, data: unknown): void {
  const validate = ajv.getSchema(`openai#/components/schemas/${schema}`);
  if (!validate) throw new Error(`no schema ${schema}`);
  if (!validate(data)) throw new Error(`not a valid ${schema}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(data).slice(0, 2000)}`);
}
