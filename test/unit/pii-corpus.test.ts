import { PII_TYPES, type PiiType } from '../../lambdas/core/pii';
import { loadCorpus, scoreCorpus } from '../fixtures/pii-corpus/corpus';

/**
 * Thresholds: structured identifiers must be near-perfect (recall ≥ 0.95, precision ≥ 0.98);
 * PERSON is found mostly without a cue, from a lexicon and the words around it, so recall ≥ 0.90
 * and precision ≥ 0.95; STREET_ADDRESS recall ≥ 0.95, precision ≥ 0.95.
 */
const THRESHOLDS: Record<PiiType, { recall: number; precision: number }> = Object.fromEntries(PII_TYPES.map((t) =>
  [t, t === 'PERSON' ? { recall: 0.9, precision: 0.95 } : t === 'STREET_ADDRESS' ? { recall: 0.95, precision: 0.95 }
    : { recall: 0.95, precision: 0.98 }],
)) as Record<PiiType, { recall: number; precision: number }>;

const corpus = loadCorpus();
const { byType, misses } = scoreCorpus(corpus);
/** The measured figures go into the test titles, so `npm test` reports them. */
const rows = PII_TYPES.map((t) => [t, byType[t].recall.toFixed(3), byType[t].precision.toFixed(3)] as const);

describe('PII corpus', () => {
  it('is substantial: ≥ 300 positive examples covering every type, ≥ 200 negative snippets', () => {
    const positives = corpus.filter((e) => e.expected.length > 0);
    expect(positives.length).toBeGreaterThanOrEqual(300);
    expect(corpus.length - positives.length).toBeGreaterThanOrEqual(200);
    for (const t of PII_TYPES) expect(positives.some((e) => e.expected.some((x) => x.type === t))).toBe(true);
  });

  it('has ≥ 500 names in running text without a label cue, EN and FR, and multi-KB documents', () => {
    const names = (file: string) => corpus.filter((e) => e.file === file).flatMap((e) => e.expected).filter((x) => x.type === 'PERSON');
    expect(names('names-en.jsonl').length + names('names-fr.jsonl').length + names('documents.jsonl').length).toBeGreaterThanOrEqual(500);
    expect(names('names-fr.jsonl').length).toBeGreaterThanOrEqual(150);
    expect(corpus.filter((e) => e.file === 'documents.jsonl' && e.text.length >= 2048).length).toBeGreaterThanOrEqual(10);
  });

  it.each(rows)('%s: recall %s, precision %s, within thresholds', (type) => {
    const s = byType[type], min = THRESHOLDS[type];
    expect(s.tp).toBeGreaterThan(0);
    if (s.recall < min.recall || s.precision < min.precision) {
      const detail = misses.filter((m) => m.type === type).map((m) => `${m.kind} ${JSON.stringify(m.value)} in ${JSON.stringify(m.text)}`);
      throw new Error(`${type}: recall ${s.recall.toFixed(3)}, precision ${s.precision.toFixed(3)}\n${detail.join('\n')}`);
    }
  });

  it('finds nothing at all in the negative snippets (code, logs, configs, tables of figures)', () => {
    const found = misses.filter((m) => m.kind === 'fp' && m.file === 'negatives.jsonl');
    expect(found.map((m) => `${m.type} ${m.value}`)).toEqual([]);
  });
});
