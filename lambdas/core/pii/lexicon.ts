/**
 * The name lexicon of the PERSON scanner: given names, family names, and which of them are also
 * ordinary English words ("Will", "Grace", "Brown"), so need more evidence. Built from open data
 * by build-lexicon.mjs (sources and licences there).
 */
import { COMMON_WORDS, FAMILY, GIVEN } from './lexicon-data';

/** Lower-case, accents and apostrophes dropped: `Côté` → `cote`, `O'Brien` → `obrien`. */
export function foldName(word: string): string {
  return word.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z-]/g, '');
}

function isDigitCode(c: number): boolean { return c >= 48 && c <= 57 }

/**
 * A front-coded sorted list (see build-lexicon.mjs), searched in place: a binary search over the
 * entries written whole, then a walk of at most 31 entries. Nothing is decoded ahead, so loading
 * costs one scan for the whole entries.
 */
class FrontCodedList {
  readonly #data: string;
  readonly #whole: number[] = []; // offsets of the digit of each entry written whole

  constructor(data: string) {
    this.#data = data;
    for (let i = data.indexOf('0'); i >= 0; i = data.indexOf('0', i + 1)) this.#whole.push(i);
  }

  #entryEnd(i: number): number {
    let j = i + 1;
    while (j < this.#data.length && !isDigitCode(this.#data.charCodeAt(j))) j++;
    return j;
  }

  has(word: string): boolean {
    const d = this.#data, whole = this.#whole;
    let lo = 0, hi = whole.length - 1;
    while (lo < hi) { // the last whole entry ≤ word
      const mid = (lo + hi + 1) >> 1, at = whole[mid]!;
      if (d.slice(at + 1, this.#entryEnd(at)) <= word) lo = mid; else hi = mid - 1;
    }
    let i = whole[lo] ?? 0, prev = '';
    for (let n = 0; n < 32 && i < d.length; n++) {
      const e = this.#entryEnd(i);
      prev = prev.slice(0, d.charCodeAt(i) - 48) + d.slice(i + 1, e);
      if (prev === word) return true;
      if (prev > word) return false;
      i = e;
    }
    return false;
  }
}

let sets: { given: FrontCodedList; family: FrontCodedList; common: FrontCodedList } | undefined;
function lexicon(): NonNullable<typeof sets> {
  return sets ??= { given: new FrontCodedList(GIVEN), family: new FrontCodedList(FAMILY), common: new FrontCodedList(COMMON_WORDS) };
}

/** Known as a name of that kind; a hyphenated compound (`Marie-Ève`, `St-Pierre`) if each part is a name. */
function known(set: FrontCodedList, folded: string): boolean {
  if (set.has(folded)) return true;
  if (!folded.includes('-')) return false;
  const { given, family } = lexicon();
  return folded.split('-').every((p) => p === 'st' || p === 'ste' || given.has(p) || family.has(p) || set.has(p));
}

export type NameEvidence = 'strong' | 'common' | 'none';

/**
 * Answers by word as written: prose repeats its capitalized words, and folding plus a search costs
 * more than a map lookup. Bounded: emptied when full.
 */
function memo<T>(compute: (word: string) => T): (word: string) => T {
  const seen = new Map<string, T>();
  return (word) => {
    let v = seen.get(word);
    if (v === undefined) {
      if (seen.size >= 4096) seen.clear();
      seen.set(word, v = compute(word));
    }
    return v;
  };
}

/** How well `word` supports being a given name: known and not an ordinary word, known but ordinary, or unknown. */
/** Articles that the name lists also hold as given names: before a capitalized word they make a place or a title. */
const ARTICLES: ReadonlySet<string> = new Set(['el', 'la', 'le', 'les', 'los', 'las', 'al', 'il']);

export const givenEvidence = memo((word: string): NameEvidence => {
  const f = foldName(word), lex = lexicon();
  if (ARTICLES.has(f) || !known(lex.given, f)) return 'none';
  return lex.common.has(f) ? 'common' : 'strong';
});

/** A known family name; `Mc`/`Mac` names (`McAllister`) are known if the rest is a name. */
function knownFamily(f: string): boolean {
  const lex = lexicon();
  if (known(lex.family, f)) return true;
  const rest = /^ma?c([a-z]{3,})$/.exec(f)?.[1];
  return rest !== undefined && (lex.family.has(rest) || lex.given.has(rest));
}

/** How well `word` supports being a family name (a given name can be one too: "Thomas", "Martin"). */
export const familyEvidence = memo((word: string): NameEvidence => {
  const f = foldName(word), lex = lexicon();
  if (!knownFamily(f) && !known(lex.given, f)) return 'none';
  return lex.common.has(f) ? 'common' : 'strong';
});

/** Known as a family name, not only as a given name: the first field of `Family, Given`. */
export const isFamilyName = memo((word: string): boolean => knownFamily(foldName(word)));
