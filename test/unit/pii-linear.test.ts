import { detectPii } from '../../lambdas/core/pii';
import { ADVERSARIAL } from '../fixtures/pii-corpus/corpus';

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

describe('scanners are linear in their input', () => {
  it.each(ADVERSARIAL)('%s: twice the input, at most about twice the work', (_, make) => {
    const small = meteredWork(make(20_000)), large = meteredWork(make(40_000));
    expect(large / small).toBeLessThan(2.5);
  });
});
