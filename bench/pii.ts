/**
 * PII benchmark: scan throughput on prose and on code, per-type recall/precision on the labeled
 * corpus, an echo round trip of 1,000 real source files, the scan time of 1 MB adversarial inputs
 * per pattern family, and what a Cursor-sized prompt adds. Returns the numbers, prints nothing.
 */
import { parseChatRequest } from '../lambdas/core/openai';
import { PII_TYPES, createPiiSession, detectPii, type PiiCounts } from '../lambdas/core/pii';
import { protect } from '../lambdas/core/privacy';
import { ADVERSARIAL, loadCorpus, realSourceFiles, scoreCorpus } from '../test/fixtures/pii-corpus/corpus';

const TARGET_CHARS = 8_000_000;

/** Concatenates `parts` (cycling if short) up to about TARGET_CHARS. */
function fill(parts: readonly string[]): string {
  const out: string[] = [];
  let n = 0;
  for (let i = 0; n < TARGET_CHARS && parts.length; i = (i + 1) % parts.length) {
    out.push(parts[i]);
    n += parts[i].length + 1;
  }
  return out.join('\n');
}

/** Best of a few runs: the machine is shared, so the fastest run is the least disturbed one. */
function mbPerSecond(text: string, runs = 5): number {
  detectPii(text); // warm-up: compile regexes, optimize the scanners
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    detectPii(text);
    best = Math.min(best, performance.now() - t0);
  }
  return Math.round((Buffer.byteLength(text) / 1e6 / (best / 1000)) * 10) / 10;
}

/**
 * What substitution adds before the first token: protecting a Cursor-sized request (a system prompt, ten
 * source excerpts and a question with personal data) — the scan, the substitution and the copy of the request.
 */
function addedTtft(files: readonly { text: string }[]): Record<string, number | boolean> {
  const body = JSON.stringify({
    model: 'anthropic/claude-sonnet-4.5',
    messages: [
      { role: 'system', content: 'You are a coding assistant. Answer concisely.' },
      ...files.slice(0, 10).map((f) => ({ role: 'user', content: f.text.slice(0, 4000) })),
      { role: 'user', content: 'Email the patch to jane.tremblay@northwind.ca and call (613) 555-0142 when done.' },
    ],
  });
  const request = parseChatRequest(body);
  const samples: number[] = [];
  for (let i = 0; i < 1200; i++) {
    const t0 = performance.now();
    protect(request, 'substitute');
    if (i >= 200) samples.push(performance.now() - t0); // after warm-up
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => +samples[Math.floor(q * (samples.length - 1))].toFixed(3);
  return { requestKB: Math.round(Buffer.byteLength(body) / 1024), p50: at(0.5), p99: at(0.99), targetMs: 1, pass: at(0.5) <= 1 };
}

/** Each adversarial family at about 1 MB: a quadratic scan takes minutes, a linear one well under the bound. */
function adversarial(): Record<string, number | boolean> {
  const ms: Record<string, number | boolean> = {};
  let worst = 0;
  for (const [name, make] of ADVERSARIAL) {
    const one = make(1).length;
    const text = make(Math.ceil(1_000_000 / Math.max(1, one - make(0).length)));
    const t0 = performance.now();
    detectPii(text);
    const t = performance.now() - t0;
    ms[name] = +t.toFixed(1);
    worst = Math.max(worst, t);
  }
  return { ...ms, worstMs: +worst.toFixed(1), boundMs: 3000, pass: worst < 3000 };
}

/**
 * A Cursor-style prompt: about 200 KB of real source files as context, a few names in code comments,
 * and a question. What protecting it adds before the first token, with the scan of every string.
 */
function cursorPrompt(files: readonly { text: string }[]): Record<string, number | boolean> {
  const context: string[] = [];
  let size = 0;
  for (const f of files) {
    if (size > 200_000) break;
    const part = f.text.slice(0, 20_000);
    context.push(part);
    size += part.length;
  }
  context[1] += '\n// Reviewed with Marie-Ève Tremblay and Sarah Thompson before the release.\n';
  const body = JSON.stringify({
    model: 'anthropic/claude-sonnet-4.5',
    messages: [
      { role: 'system', content: 'You are a coding assistant in an editor. Answer concisely.' },
      { role: 'user', content: context.join('\n\n') + '\n\nWhy does this fail for Jean-François Côté but not for Priya Patel?' },
    ],
  });
  const request = parseChatRequest(body);
  const samples: number[] = [];
  for (let i = 0; i < 120; i++) {
    const t0 = performance.now();
    protect(request, 'substitute');
    if (i >= 20) samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => +samples[Math.floor(q * (samples.length - 1))].toFixed(2);
  return { requestKB: Math.round(Buffer.byteLength(body) / 1024), p50: at(0.5), p99: at(0.99), targetMs: 5, pass: at(0.5) < 5 };
}

export async function piiBench(): Promise<Record<string, unknown>> {
  const corpus = loadCorpus();
  const proseParts = [...corpus.map((e) => e.text), ...realSourceFiles(2000, /\.md$/).map((f) => f.text)];
  const codeParts = realSourceFiles(4000, /\.(?:js|ts)$/).map((f) => f.text);
  const prose = fill(proseParts), code = fill(codeParts);
  // prompts mix both: alternate a prose part and a code part
  const mixed = fill(proseParts.flatMap((p, i) => [p, codeParts[i % codeParts.length]]));

  const { byType } = scoreCorpus(corpus);
  const accuracy = Object.fromEntries(PII_TYPES.map((t) => {
    const s = byType[t];
    return [t, { recall: +s.recall.toFixed(3), precision: +s.precision.toFixed(3), tp: s.tp, fp: s.fp, fn: s.fn }];
  }));

  const files = realSourceFiles(1000);
  let identical = 0;
  const substitutions: PiiCounts = {};
  for (const f of files) {
    const session = createPiiSession([f.text]);
    if (session.restore(session.substitute(f.text)) === f.text) identical++;
    for (const [t, n] of Object.entries(session.counts) as [keyof PiiCounts, number][]) substitutions[t] = (substitutions[t] ?? 0) + n;
  }

  return {
    scanMBps: { prose: mbPerSecond(prose), code: mbPerSecond(code), mixed: mbPerSecond(mixed), mixedTarget: 50 },
    inputMB: { prose: +(Buffer.byteLength(prose) / 1e6).toFixed(1), code: +(Buffer.byteLength(code) / 1e6).toFixed(1) },
    corpus: { examples: corpus.length, positives: corpus.filter((e) => e.expected.length).length, byType: accuracy },
    echo: { files: files.length, identical, substitutions },
    substitutionAddedTtftMs: addedTtft(files),
    cursorPrompt200KBAddedMs: cursorPrompt(realSourceFiles(400, /\.(?:js|ts)$/)),
    adversarial1MBScanMs: adversarial(),
  };
}
