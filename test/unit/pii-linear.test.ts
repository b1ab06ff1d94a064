import { detectPii } from '../../lambdas/core/pii';

/**
 * Every scanner must do work proportional to its input. Instead of timing (the machine is shared),
 * this counts work: while the detector runs, the primitives it is built from are metered —
 * characters a regex skips or matches (a global search that fails is charged the rest of the input),
 * characters read one at a time, searched by indexOf or copied by slice. Doubling an adversarial
 * input must then roughly double the count; a scan that restarts inside the same run quadruples it.
 */
function meteredWork(text: string): number {
  let work = 0;
  const exec = RegExp.prototype.exec;
  const charCodeAt = String.prototype.charCodeAt;
  const indexOf = String.prototype.indexOf;
  const slice = String.prototype.slice;
  RegExp.prototype.exec = function (this: RegExp, s: string) {
    const from = this.global || this.sticky ? this.lastIndex : 0;
    const m = exec.call(this, s);
    work += 1 + (m ? m.index - from + m[0].length : this.sticky ? 0 : s.length - from);
    return m;
  };
  String.prototype.charCodeAt = function (this: string, i: number) { work++; return charCodeAt.call(this, i) };
  String.prototype.indexOf = function (this: string, sub: string, from?: number) {
    const r = indexOf.call(this, sub, from);
    work += 1 + (r < 0 ? this.length : r) - (from ?? 0);
    return r;
  };
  String.prototype.slice = function (this: string, a?: number, b?: number) {
    const r = slice.call(this, a, b);
    work += 1 + r.length;
    return r;
  };
  try {
    detectPii(text);
  } finally {
    RegExp.prototype.exec = exec;
    String.prototype.charCodeAt = charCodeAt;
    String.prototype.indexOf = indexOf;
    String.prototype.slice = slice;
  }
  return work;
}

/** Adversarial shapes for each pattern family, as a function of a repeat count. */
const FAMILIES: [string, (n: number) => string][] = [
  ['names: apostrophe particles', (n) => 'A ' + "O' ".repeat(n)],
  ['names: particles after a capital', (n) => 'Jean ' + 'de '.repeat(n) + 'x'],
  ['names: capitalized words', (n) => 'Ab '.repeat(n)],
  ['names: hyphenated capitals', (n) => 'Ab-'.repeat(n) + 'x'],
  ['names: labels', (n) => 'Name: Ab '.repeat(n)],
  ['names: initials', (n) => 'A. '.repeat(n)],
  ['names: given names', (n) => 'Sarah '.repeat(n)],
  ['names: surname, given', (n) => 'Tremblay,'.repeat(n)],
  ['addresses: hyphenated street words', (n) => '12 rue ' + 'Ab-'.repeat(n) + '1'],
  ['addresses: house numbers', (n) => '12 Main '.repeat(n)],
  ['digit runs: spaced digits', (n) => '1 '.repeat(n)],
  ['digit runs: 3-3-3 groups', (n) => '123 456 789 '.repeat(n)],
  ['digit runs: dashed SIN shapes', (n) => '130-692-544 '.repeat(n)],
  ['digit runs: dashes', (n) => '1-'.repeat(n)],
  ['emails: at signs', (n) => 'a@'.repeat(n)],
  ['emails: dotted local part', (n) => 'a.'.repeat(n) + '@x'],
  ['IPv6: hex and colons', (n) => '1:'.repeat(n)],
  ['IPv6: double colons', (n) => 'a::'.repeat(n)],
];

describe('scanners are linear in their input', () => {
  it.each(FAMILIES)('%s: twice the input, at most about twice the work', (_, make) => {
    const small = meteredWork(make(20_000)), large = meteredWork(make(40_000));
    expect(large / small).toBeLessThan(2.5);
  });
});
