/** Money is integer micro-CAD everywhere; prices are micro-CAD per million tokens. */
export interface Prices {
  input: number;
  output: number;
  cache_read: number;
  cache_write: number;
}

/** Token counts, normalised across providers. */
export interface TokenUsage {
  /** Input tokens neither read from nor written to a prompt cache. */
  input: number;
  /** Every generated token, reasoning included: all of it is billed at the output price. */
  output: number;
  cache_read: number;
  cache_write: number;
  /** The part of `output` that was reasoning ("thinking"), where the provider reports it. */
  reasoning: number;
}

/** Where a request's billed usage comes from: the provider's own report, or an estimate where it sent none. */
export type UsageBasis = 'reported' | 'estimated';

export const ZERO_USAGE: TokenUsage = { input: 0, output: 0, cache_read: 0, cache_write: 0, reasoning: 0 };

/** "4.14" CAD → 4_140_000 micro-CAD, exactly (no float arithmetic on money). */
export function parseCad(cad: string): number {
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(cad);
  if (!m) throw new Error(`not a CAD amount: ${cad}`);
  return Number(m[1]) * 1_000_000 + Number((m[2] ?? '').padEnd(6, '0'));
}

export function formatCad(micro: number): string {
  const sign = micro < 0 ? '-' : '';
  const abs = Math.abs(micro);
  return `${sign}${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, '0')}`;
}

const priced = (tokens: number, perMtok: number) => Math.ceil((tokens * perMtok) / 1_000_000);

/** Cost of a request in micro-CAD, each token class at its own price, rounded up. */
export function costOf(u: TokenUsage, p: Prices): number {
  return priced(u.input, p.input) + priced(u.output, p.output) + priced(u.cache_read, p.cache_read) + priced(u.cache_write, p.cache_write);
}

/** Worst case reserved at admission: every input token uncached at full price, every output token produced. */
export function worstCaseCost(inputTokens: number, maxOutputTokens: number, p: Prices): number {
  return priced(inputTokens, Math.max(p.input, p.cache_write)) + priced(maxOutputTokens, p.output);
}

/**
 * Input tokens bounded from the request's UTF-8 size: no tokenizer yields fewer than 3 bytes a token on
 * average for real text (English runs near 4, CJK is 3 bytes a character), and the JSON around it only adds.
 */
export const estimateInputTokens = (utf8Bytes: number) => Math.ceil(utf8Bytes / 3);
