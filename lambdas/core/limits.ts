import { badRequest } from './errors';

/*
 * Bounds on what one chat request may contain, so that every request costs the gateway work proportional to
 * these numbers at most. Each is refused with a 400 in OpenAI's shape naming the limit (README: Limits).
 */
export const REQUEST_LIMITS = {
  /** Messages (or Responses input items) in one request. */
  messages: 10_000,
  /** Content parts over the whole request (system blocks, message parts, tool calls and results). */
  contentParts: 10_000,
  /** Tools offered in one request (OpenAI's own limit). */
  tools: 128,
  /** Nesting of arrays and objects in the JSON body (tool schemas and tool-call arguments included). */
  depth: 64,
} as const;

/**
 * The deepest nesting of arrays and objects in a JSON text, stopping as soon as it exceeds `max`. A scan of the
 * text, not of the parsed value: it needs no recursion, so a body nested a million deep costs one linear pass.
 */
export function exceedsDepth(json: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

export const tooDeep = () =>
  badRequest(`The request nests arrays and objects more than ${REQUEST_LIMITS.depth} levels deep.`, null, 'request_too_deep');

export function assertCount(what: 'messages' | 'contentParts' | 'tools', count: number, param: string | null): void {
  const max = REQUEST_LIMITS[what];
  if (count <= max) return;
  const noun = { messages: 'messages', contentParts: 'content parts', tools: 'tools' }[what];
  const code = { messages: 'too_many_messages', contentParts: 'too_many_content_parts', tools: 'too_many_tools' }[what];
  throw badRequest(`The request has ${count} ${noun}; at most ${max} are allowed.`, param, code);
}
