/**
 * PII detection and reversible substitution for the gateway's hot path.
 *
 * Pure TypeScript, no I/O. Detection is a handful of cheap passes, each anchored on something rare
 * (an `@`, a run of ≥6 digits, a letter-digit-letter triple, two capitalized words, a house number);
 * everything expensive (Luhn, cue words, range checks) only runs on those candidates.
 *
 * Policy decisions worth knowing:
 * - Bare digit strings (no separators) are only PII with a context cue, because code is full of
 *   10-digit constants and 9-digit ids; formatted ones (415-555-0199, 046 454 286) need no cue.
 * - E-mails at RFC 2606 reserved domains (example.com, *.test, …) are documentation, never anyone's
 *   address: not substituted. `git@host:path` / `user@host/path` are remotes, not e-mails.
 * - PERSON: a capitalized given+family shape whose words are not common title words ("Setup Node"),
 *   either after a cue (label, "my name is", greeting, signature, honorific, speaker line) or
 *   known to the name lexicon (pii/lexicon.ts) and placed like a name, not like a heading or product.
 */

import { familyEvidence, givenEvidence, isFamilyName } from './pii/lexicon';

export const PII_TYPES = [
  'EMAIL', 'PHONE', 'CA_SIN', 'CREDIT_CARD', 'CA_POSTAL_CODE', 'CA_HEALTH_NUMBER', 'CA_PASSPORT',
  'IP_ADDRESS', 'PERSON', 'STREET_ADDRESS',
] as const;
export type PiiType = typeof PII_TYPES[number];
export interface PiiFinding { type: PiiType; start: number; end: number }
export type PiiCounts = Partial<Record<PiiType, number>>;

// ---------------------------------------------------------------------------------------------
// Character helpers

function isDigit(c: number): boolean { return c >= 48 && c <= 57 }
/** ASCII alphanumerics, `_` and Latin-1/Latin Extended-A/B letters: what may glue onto a token. */
function isWord(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 ||
    (c >= 0xc0 && c <= 0x24f && c !== 0xd7 && c !== 0xf7);
}
function isHex(c: number): boolean { return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) }
function digitsOf(s: string): string { return s.replace(/\D/g, '') }

function luhn(d: string): boolean {
  let sum = 0;
  for (let i = d.length - 1, dbl = false; i >= 0; i--, dbl = !dbl) {
    let v = d.charCodeAt(i) - 48;
    if (dbl && (v *= 2) > 9) v -= 9;
    sum += v;
  }
  return sum % 10 === 0;
}

/** Lower-cased text just before `start`, where cue words are looked for. */
function windowBefore(text: string, start: number, n = 48): string {
  return text.slice(Math.max(0, start - n), start).toLowerCase();
}
/** End offset of the last match of `re` (global) in `s`, or -1: the nearest cue wins. */
function lastCue(re: RegExp, s: string): number {
  re.lastIndex = 0;
  let end = -1;
  for (let m; (m = re.exec(s));) end = m.index + m[0].length;
  return end;
}

// ---------------------------------------------------------------------------------------------
// EMAIL

function isLocalChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
    c === 46 || c === 95 || c === 37 || c === 43 || c === 45; // . _ % + -
}
function isDomainChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 45;
}
/** Asset names like `icon@2x.png` and `foo@bar.js` have a file extension where the TLD would be. */
const FILE_TLDS = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'ico', 'js', 'mjs', 'cjs', 'ts', 'tsx',
  'jsx', 'json', 'css', 'scss', 'map', 'lock', 'html', 'vue', 'wasm', 'txt', 'yml', 'yaml', 'zip', 'gz']);
const RESERVED_DOMAIN = /(?:^|\.)(?:example\.(?:com|net|org)|example|test|invalid|localhost|local)$/i;

function scanEmails(text: string, out: PiiFinding[]): void {
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    let s = at;
    while (s > 0 && at - s <= 64 && isLocalChar(text.charCodeAt(s - 1))) s--;
    while (s < at && text.charCodeAt(s) === 46) s++;
    if (s === at || at - s > 64 || text.charCodeAt(at - 1) === 46 || text.slice(s, at).includes('..')) continue;
    let e = at + 1;
    while (e < text.length && isDomainChar(text.charCodeAt(e))) e++;
    while (e > at + 1 && (text.charCodeAt(e - 1) === 46 || text.charCodeAt(e - 1) === 45)) e--;
    const domain = text.slice(at + 1, e);
    const dot = domain.lastIndexOf('.');
    const tld = domain.slice(dot + 1);
    if (dot <= 0 || domain.includes('..') || !/^[A-Za-z]{2,24}$/.test(tld)) continue;
    if (FILE_TLDS.has(tld.toLowerCase()) || RESERVED_DOMAIN.test(domain)) continue;
    const before = text.charCodeAt(s - 1), after = text.charCodeAt(e), next = text.charCodeAt(e + 1);
    if (isWord(before) || before === 47 /* / */ || before === 64 /* @ */) continue;
    if (after === 64 || isWord(after)) continue;
    // scp/git remote `git@github.com:org/repo.git`, URL userinfo `https://u:p@host/...`
    if (after === 58 && (isWord(next) || next === 47 || next === 126)) continue;
    if (after === 47) continue;
    if (before === 58 && /\/\/\S*$/.test(text.slice(Math.max(0, s - 80), s))) continue;
    out.push({ type: 'EMAIL', start: s, end: e });
    at = e - 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Digit-based identifiers: PHONE, CA_SIN, CREDIT_CARD, CA_HEALTH_NUMBER (OHIP, BC PHN, RAMQ), CA_PASSPORT

const PHONE_CUE = new RegExp(String.raw`phone|t[ée]l[ée]?phone|\btel\b|\bt[ée]l\b|cell|mobile|portable|fax|call|appel|` +
  String.raw`joindre|\bsms\b|text me|whatsapp|contact|num[ée]ro|\bnum\b|\bph\b`, 'g');
const HEALTH_CUE = new RegExp(String.raw`health|sant[ée]|ohip|ramq|\bphn\b|\bnam\b|assurance[- ]maladie|carte soleil|` +
  String.raw`care ?card|\bhcn\b|\bmsp\b|medical services`, 'g');
const SIN_CUE = /(?:\bsin\b|\bnas\b|social insurance|assurance sociale|\bssn\b)/g;
const CARD_CUE = new RegExp(String.raw`card|carte|credit|cr[ée]dit|visa|master|amex|american express|discover|\bjcb\b|` +
  String.raw`diners|\bcc\b|\bpan\b|payment|paiement|pay with|paid with|charge`, 'g');
const ORDER_CUE = new RegExp(String.raw`order|invoice|commande|facture|tracking|suivi|r[ée]f[ée]rence|\bref\b|` +
  String.raw`transaction|\btxn\b|confirmation|receipt|re[çc]u|ticket|\bids?\b`, 'g');
/** Forms where a number is a value in code rather than prose: `= 123`, `[123`, `"id": "123`. */
const CODE_POSITION = /[=:(\[{,'"`]\s*$/;

const PHONE_Y = new RegExp(String.raw`(?:\+?1[ .-]?)?(?:\([2-9]\d\d\)[ .-]?|[2-9]\d\d[ .-]?)[2-9]\d\d[ .-]?\d{4}` +
  String.raw`(?:,? ?(?:x|ext\.?|extension|poste|p\.) ?\d{1,6})?`, 'y');
const CARD_Y = /\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ -])\d{6}\2\d{4,5}|\d{13,19}/y;
const SIN_Y = /\d{3}([ -]?)\d{3}\1\d{3}/y;
const OHIP_Y = /\d{4}([ -]?)\d{3}\1\d{3}(?:[ -]?[A-Z]{2}(?![A-Za-z]))?/y;
const RAMQ_Y = /[A-Z]{4} ?\d{4} ?\d{4}/y;

function cardIssuerOk(d: string): boolean {
  const n = d.length, p2 = +d.slice(0, 2), p3 = +d.slice(0, 3), p4 = +d.slice(0, 4), p6 = +d.slice(0, 6);
  if (d[0] === '4') return n === 13 || n === 16 || n === 19;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16;
  if (p2 === 34 || p2 === 37) return n === 15;
  if (n < 14) return false;
  if (p3 >= 300 && p3 <= 305 || p2 === 36 || p2 === 38 || p2 === 39) return true; // Diners
  if (n < 16) return false;
  return p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925) ||
    (p4 >= 3528 && p4 <= 3589);
}

/** A number must not be glued to a word, a version/path/hex prefix or a further digit group. */
function leftFree(text: string, s: number): boolean {
  const c = text.charCodeAt(s - 1);
  if (isWord(c) || c === 46 || c === 45 || c === 47 || c === 64 || c === 35 || c === 36 || c === 43) return false;
  // a digit group just before (`1 234 567 890`, `3.14 ...`) means this is part of a bigger number
  return !(c === 32 && isDigit(text.charCodeAt(s - 2)));
}
function rightFree(text: string, e: number): boolean {
  const c = text.charCodeAt(e);
  if (isWord(c)) return false;
  return !((c === 46 || c === 45 || c === 44 || c === 47) && isDigit(text.charCodeAt(e + 1)));
}
/** Space-grouped digits followed by a currency or percent sign are an amount (`130 692 544 $`). */
function isAmount(text: string, e: number): boolean {
  return /^\s?(?:[$€£%]|dollars|\$|cad|usd)/i.test(text.slice(e, e + 8));
}

/**
 * Grouped digits followed by a unit are a quantity (`434 691 556 bytes`, `130 692 544 $`). A SIN needs
 * its cue or a shape only SINs have (3-3-3 with dashes, unlike space-grouped thousands), outside tables.
 */
const UNIT_AFTER_NUMBER = new RegExp(String.raw`^\s?(?:[$€£%]|(?:bytes?|octets?|[kmgt]i?b|[kmgt]o|ms|µs|ns|sec|s|` +
  String.raw`seconds?|secondes?|rows?|lignes?|lines?|records?|enregistrements?|tokens?|jetons?|requests?|requ[êe]tes?|` +
  String.raw`users?|utilisateurs?|items?|[ée]l[ée]ments?|files?|fichiers?|km|kg|dollars|cad|usd|eur)(?![\p{L}\p{N}]))`, 'iu');
function isQuantity(text: string, e: number): boolean {
  return UNIT_AFTER_NUMBER.test(text.slice(e, e + 16));
}
/** A number on a line with table cells (`|`, tabs) or other grouped figures is one figure among many. */
function inTable(text: string, p: number): boolean {
  const from = Math.max(0, p - 200), win = text.slice(from, p + 200), at = p - from;
  let le = win.indexOf('\n', at);
  if (le < 0) le = win.length;
  const line = win.slice(win.lastIndexOf('\n', at) + 1, le);
  return /[|\t]/.test(line) || (line.match(/\d{3}[ -]\d{3}/g)?.length ?? 0) > 1;
}

function stickyAt(re: RegExp, text: string, at: number): string | null {
  re.lastIndex = at;
  const m = re.exec(text);
  return m ? m[0] : null;
}

function isUpper(c: number): boolean { return c >= 65 && c <= 90 }

/** RAMQ: 4 letters (surname 3 + given 1), then YYMMDD (+50 on the month for women) and 2 digits. */
function matchRamqAt(text: string, p: number, out: PiiFinding[]): number {
  const s = isUpper(text.charCodeAt(p - 1)) ? p - 4 : text.charCodeAt(p - 1) === 32 ? p - 5 : -1;
  if (s < 0 || !isUpper(text.charCodeAt(s))) return -1;
  const m = stickyAt(RAMQ_Y, text, s);
  if (!m || !leftFree(text, s) || !rightFree(text, s + m.length)) return -1;
  const d = digitsOf(m), mm = +d.slice(2, 4), dd = +d.slice(4, 6);
  if (!((mm >= 1 && mm <= 12) || (mm >= 51 && mm <= 62)) || dd < 1 || dd > 31) return -1;
  out.push({ type: 'CA_HEALTH_NUMBER', start: s, end: s + m.length });
  return s + m.length;
}

/** Classifies a phone, card, SIN or OHIP/PHN number starting exactly at `p`; returns its end or -1. */
function matchNumberAt(text: string, p: number, out: PiiFinding[]): number {
  let win: string | undefined;
  const cue = (re: RegExp) => lastCue(re, win ??= windowBefore(text, p));

  const card = stickyAt(CARD_Y, text, p);
  if (card && leftFree(text, p) && rightFree(text, p + card.length)) {
    const d = digitsOf(card);
    if (cardIssuerOk(d) && luhn(d)) {
      const c = cue(CARD_CUE), o = cue(ORDER_CUE);
      const bare = d.length === card.length;
      const ok = c > o || (o < 0 && !(bare && CODE_POSITION.test(text.slice(Math.max(0, p - 8), p))));
      if (ok) {
        out.push({ type: 'CREDIT_CARD', start: p, end: p + card.length });
        return p + card.length;
      }
    }
  }

  const ohip = stickyAt(OHIP_Y, text, p);
  if (ohip && leftFree(text, p) && rightFree(text, p + ohip.length)) {
    const sep = !isDigit(ohip.charCodeAt(4));
    if ((sep && !isAmount(text, p + ohip.length)) || cue(HEALTH_CUE) > cue(PHONE_CUE)) {
      out.push({ type: 'CA_HEALTH_NUMBER', start: p, end: p + ohip.length });
      return p + ohip.length;
    }
  }

  // Phone: also try from a `(` or `+` just before the digits.
  const b = text.charCodeAt(p - 1);
  const ps = b === 40 || b === 43 ? p - 1 : p;
  const phone = leftFree(text, ps) ? stickyAt(PHONE_Y, text, ps) : null;
  if (phone && rightFree(text, ps + phone.length)) {
    const d = digitsOf(phone);
    const bare = d.length === phone.length;
    const h = cue(HEALTH_CUE), ph = cue(PHONE_CUE);
    const type: PiiType | null = h > ph && d.length === 10 ? 'CA_HEALTH_NUMBER'
      : bare && ph < 0 ? null
      : 'PHONE';
    if (type && !(phone.includes(' ') && !phone.includes('(') && isAmount(text, ps + phone.length))) {
      out.push({ type, start: ps, end: ps + phone.length });
      return ps + phone.length;
    }
  }

  const sin = stickyAt(SIN_Y, text, p);
  if (sin && leftFree(text, p) && rightFree(text, p + sin.length)) {
    const d = digitsOf(sin);
    if (luhn(d) && !isQuantity(text, p + sin.length) &&
      (cue(SIN_CUE) >= 0 || (sin[3] === '-' && d[0] !== '0' && d[0] !== '8' && !inTable(text, p)))) {
      out.push({ type: 'CA_SIN', start: p, end: p + sin.length });
      return p + sin.length;
    }
  }
  return -1;
}

/** CA_PASSPORT: two letters + six digits, only after the word passport/passeport. */
const PASSPORT_CUE = /passe?port/;
function matchPassportAt(text: string, p: number, out: PiiFinding[]): number {
  const s = p - 2, e = p + 6;
  if (!isUpper(text.charCodeAt(s)) || !isUpper(text.charCodeAt(s + 1)) || isWord(text.charCodeAt(s - 1))) return -1;
  for (let i = p; i < e; i++) if (!isDigit(text.charCodeAt(i))) return -1;
  if (isWord(text.charCodeAt(e)) || !PASSPORT_CUE.test(windowBefore(text, s, 60))) return -1;
  out.push({ type: 'CA_PASSPORT', start: s, end: e });
  return e;
}

/** Identifiers inside one digit run [start, end); returns where scanning may resume. */
function scanNumberRun(text: string, start: number, end: number, out: PiiFinding[]): number {
  let resume = end;
  let left = 0; // digits from p to the end of the run: passports need 6, RAMQ 8, the rest 9+
  for (let i = start; i < end; i++) if (isDigit(text.charCodeAt(i))) left++;
  for (let p = start; p < end && left >= 6; p++) {
    if (!isDigit(text.charCodeAt(p))) continue;
    if (p > start && isDigit(text.charCodeAt(p - 1))) { left--; continue; }
    let e = matchPassportAt(text, p, out);
    if (e < 0 && left >= 8) e = matchRamqAt(text, p, out);
    if (e < 0 && left >= 9) e = matchNumberAt(text, p, out);
    if (e > p) {
      for (; p < e && p < end; p++) if (isDigit(text.charCodeAt(p))) left--;
      p--;
      resume = Math.max(resume, e); // a match may run past the run (e.g. an extension)
    } else left--;
  }
  return resume;
}

// ---------------------------------------------------------------------------------------------
// IP_ADDRESS

const IPV4 = /\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}/g;
/** Just before a 4-part number these make it a version: `==1.2.3.4`, `Chrome/1.2.3.4`, `repo/app:1.2.3.4`, `## [1.2.3.4]`. */
const VERSION_BEFORE = /(?:[\^~]|[<>=!~]=|[A-Za-z]\/|\/[\w.-]+:|(?:^|\n)#*\s*\[)$/;
/** Version or section talk shortly before (`AssemblyVersion("…`, "release notes for …", "Section 13.3.3.7"). */
const VERSION_NEAR = new RegExp(String.raw`version|\bver\b|release|upgrad|downgrad|firmware|changelog|\bbuild|\bpatch|` +
  String.raw`sprint|\bimage\b|\btag\b|\bv\d|section|chapter|chapitre|article|§|\boids?\b|object ?identifier|asn\.?1`);
/** A four-part number opening a line or comment and followed by a title is a clause number (`// 19.4.1.1 Symbol(…)`). */
const SECTION_BEFORE = /(?:^|\n)[ \t]*(?:\/\/+|#+|\*|--)?[ \t]*$/;
/** X.509 and PKCS object identifiers have four-part forms that parse as public IPv4 (`2.5.29.17`). */
const OID_PREFIX = /^(?:2\.5\.(?:4|29)|1\.2\.840|1\.3\.6)\./;

function ipv4Public(o: number[]): boolean {
  const [a, b, c] = o;
  return !(a === 0 || a === 10 || a === 127 || a >= 224 ||
    (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) || (a === 192 && b === 0 && (c === 0 || c === 2)) ||
    (a === 198 && (b === 18 || b === 19)) || (a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113));
}
function parseV4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const o: number[] = [];
  for (const p of parts) {
    if (!/^(?:0|[1-9]\d{0,2})$/.test(p) || +p > 255) return null;
    o.push(+p);
  }
  return o;
}

function scanIPv4(text: string, out: PiiFinding[]): void {
  IPV4.lastIndex = 0;
  for (let m; (m = IPV4.exec(text));) {
    const s = m.index, e = s + m[0].length;
    const b = text.charCodeAt(s - 1), a = text.charCodeAt(e);
    // After `$` it is a clause reference (`ES6$25.4.5.4`) or an amount, not an address.
    if (isWord(b) || b === 46 || b === 64 || b === 45 || b === 36) continue;
    if (isWord(a) || ((a === 46 || a === 45) && isWord(text.charCodeAt(e + 1)))) continue;
    const o = parseV4(m[0]);
    // a.0.0.0 is a /8 network or a version (`Chrome/120.0.0.0`), never a host; four single digits
    // (1.2.3.4, 8.8.8.8, 1.1.1.1) are a 4-part version or a public resolver, nobody's address.
    if (!o || !ipv4Public(o) || (o[1] === 0 && o[2] === 0 && o[3] === 0) || o.every((x) => x < 10)) continue;
    if (OID_PREFIX.test(m[0]) || (SECTION_BEFORE.test(text.slice(Math.max(0, s - 12), s)) && /^ \p{L}/u.test(text.slice(e, e + 2))) ||
      VERSION_BEFORE.test(text.slice(Math.max(0, s - 40), s)) ||
      VERSION_NEAR.test(windowBefore(text, s, 32))) continue;
    out.push({ type: 'IP_ADDRESS', start: s, end: e });
  }
}

/** Anchored on a colon pair with hex between; the token around it is then parsed strictly. */
const V6_ANCHOR = /:[0-9A-Fa-f]{0,4}:/g;

function ipv6Public(groups: number[]): boolean {
  const g0 = groups[0];
  if (groups.every((g) => g === 0)) return false;                             // ::
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return false; // ::1
  if ((g0 & 0xffc0) === 0xfe80 || (g0 & 0xfe00) === 0xfc00 || (g0 & 0xff00) === 0xff00) return false;
  if (g0 === 0x2001 && groups[1] === 0x0db8) return false;                   // documentation
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {    // IPv4-mapped
    return ipv4Public([groups[6] >> 8, groups[6] & 255, groups[7] >> 8, groups[7] & 255]);
  }
  return true;
}
/** Parses a strict IPv6 literal into 8 groups; null if it is anything else (C++ `a::b`, MACs, times). */
function parseV6(tok: string): number[] | null {
  let tail: number[] = [];
  const v4 = /:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(tok); // IPv4-mapped tail, `::ffff:1.2.3.4`
  if (v4) {
    const o = parseV4(v4[1]);
    if (!o) return null;
    tail = [(o[0] << 8) | o[1], (o[2] << 8) | o[3]];
    tok = tok.slice(0, tok.endsWith('::' + v4[1]) ? -v4[1].length : -v4[1].length - 1);
  } else if (tok.includes('.')) return null;
  const halves = tok.split('::');
  if (halves.length > 2) return null;
  const part = (h: string) => (h === '' ? [] : h.split(':'));
  const head = part(halves[0]), rest = halves.length === 2 ? part(halves[1]) : [];
  const all = [...head, ...rest];
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return null;
  const explicit = all.length + tail.length;
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return null;
  // Compressed forms with fewer than 3 groups (`1::2`, `ab::cd`, `::1`) are slices, paths or not public.
  if (halves.length === 2 && explicit < 3) return null;
  const zeros = new Array(8 - explicit).fill(0);
  return [...head.map((g) => parseInt(g, 16)), ...(halves.length === 2 ? zeros : []),
    ...rest.map((g) => parseInt(g, 16)), ...tail];
}

function scanIPv6(text: string, out: PiiFinding[]): void {
  V6_ANCHOR.lastIndex = 0;
  for (let m; (m = V6_ANCHOR.exec(text));) {
    let s = m.index, e = m.index + m[0].length;
    while (s > 0 && (isHex(text.charCodeAt(s - 1)) || text.charCodeAt(s - 1) === 58)) s--;
    while (e < text.length && (isHex(text.charCodeAt(e)) || text.charCodeAt(e) === 58 || text.charCodeAt(e) === 46)) e++;
    while (e > s && text.charCodeAt(e - 1) === 46) e--;
    V6_ANCHOR.lastIndex = e;
    if (isWord(text.charCodeAt(s - 1)) || isWord(text.charCodeAt(e)) || text.charCodeAt(s - 1) === 46) continue;
    // a single trailing ':' belongs to the prose ("address 2001:db8::1:") — drop it
    if (text.charCodeAt(e - 1) === 58 && text.charCodeAt(e - 2) !== 58) e--;
    const groups = parseV6(text.slice(s, e));
    if (groups && ipv6Public(groups)) out.push({ type: 'IP_ADDRESS', start: s, end: e });
  }
}

// ---------------------------------------------------------------------------------------------
// CA_POSTAL_CODE: A1A 1A1 — no D F I O Q U, no W Z first.

const POSTAL = /[ABCEGHJ-NPRSTVXYabceghj-nprstvxy]\d[A-Za-z][ -]?\d[A-Za-z]\d/g;
const POSTAL_SHAPE = /^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ -]?\d[ABCEGHJ-NPRSTV-Z]\d$/;

const POSTAL_CUE = new RegExp(String.raw`postal|zip|code|adress|address|livr|ship|deliver|qu[ée]bec|ontario|canada|` +
  String.raw`\b(?:qc|on|bc|ab|mb|sk|ns|nb|nl|pe|yt|nt|nu|rue|boul|boulevard|av|ave|avenue|chemin|rang|route|mont[ée]e|` +
  String.raw`street|st|rd|road|dr|drive|blvd|app|apt|suite|unit)\b`);
/** Not glued to a word, a colour `#`, base64/path characters, or `.`/`-` that continue a token. */
function postalEdge(text: string, i: number, dir: 1 | -1): boolean {
  const c = text.charCodeAt(i);
  if (isWord(c) || c === 35 || c === 47 || c === 43 || c === 61) return false;
  return !((c === 45 || c === 46) && isWord(text.charCodeAt(i + dir)));
}

function scanPostal(text: string, out: PiiFinding[]): void {
  POSTAL.lastIndex = 0;
  for (let m; (m = POSTAL.exec(text));) {
    const s = m.index, e = s + m[0].length, v = m[0];
    if (!postalEdge(text, s - 1, -1) || !postalEdge(text, e, 1) || !POSTAL_SHAPE.test(v.toUpperCase())) continue;
    // unspaced `K1A0B1` only next to address words: alone it is a hash, colour or data fragment;
    // lower/mixed case only when spaced like a postal code
    if (v.length === 6 && (v !== v.toUpperCase() || !POSTAL_CUE.test(windowBefore(text, s, 96)))) continue;
    if (/^([A-Z])1\1[ -]?1\1(?:1)$/.test(v)) continue; // the format itself, as docs write it: A1A 1A1
    out.push({ type: 'CA_POSTAL_CODE', start: s, end: e });
  }
}

// ---------------------------------------------------------------------------------------------
// STREET_ADDRESS: house number + street, English and French orders.

// Words are separated by spaces only and hyphens live inside a word, so no text has two parses (no ReDoS).
const ST_WORD = String.raw`(?:(?:St|Ste|Mt)\.|\p{Lu}\p{Ll}[\p{L}'’]*(?:-\p{L}[\p{L}'’]*)*|\d{1,3}(?:st|nd|rd|th|e|re|er|ème))`;
const EN_TYPE = String.raw`(?:Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Crescent|Cres|` +
  String.raw`Place|Pl|Terrace|Terr|Trail|Trl|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Close|Gate|Grove|Heights|Hts|` +
  String.raw`Line|Sideroad|Concession)\.?`;
const EN_DIR = String.raw`(?: (?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\b\.?)?`;
const FR_TYPE = String.raw`(?:rue|Rue|RUE|boul\.?|Boul\.?|boulevard|Boulevard|bd|Bd|av\.|Av\.|avenue|Avenue|chemin|Chemin|` +
  String.raw`ch\.|Ch\.|route|Route|rang|Rang|place|Place|mont[ée]e|Mont[ée]e|c[ôo]te|C[ôo]te|all[ée]e|All[ée]e|impasse|` +
  String.raw`Impasse|croissant|Croissant|promenade|Promenade|terrasse|Terrasse|carr[ée]|Carr[ée]|rond-point|Rond-point)`;
const FR_NAME = String.raw`(?:(?:de la|de l['’]|du|des|de|d['’]|la|le|l['’]) ?)?${ST_WORD}(?: (?:${ST_WORD}|de|du|des|la|le)){0,4}`;
const FR_DIR = String.raw`(?: (?:Ouest|Est|Nord|Sud|O\.|E\.|N\.|S\.)(?![\p{L}]))?`;
const UNIT_WORD = 'Apt|Apartment|Unit|Suite|Ste|App|Appartement|app|appartement|bureau|Bureau|local|Local|unité|Unité|#';
const UNIT_AFTER = String.raw`(?:,? (?:${UNIT_WORD})\.? ?#?(?=[A-Za-z]?\d)[\dA-Za-z]{1,6}(?![\p{L}\p{N}]))?`;
const FR_TYPE_INITIALS = 'rbacpmit';
const HOUSE = String.raw`\d{1,5}(?:-\d{1,5})?[A-Za-z]?`;
const ADDRESS_Y = new RegExp(String.raw`${HOUSE}(?:,? ${ST_WORD}(?: ${ST_WORD}){0,3} ${EN_TYPE}${EN_DIR}|` +
  String.raw`,? ${FR_TYPE} ${FR_NAME}${FR_DIR})${UNIT_AFTER}(?![\p{L}\p{N}])`, 'uy');
const UNIT_BEFORE = /(?:apt|apartment|unit|suite|ste|app|appartement|bureau|unité|#)\.? ?#?(?=[A-Za-z]?\d)[\dA-Za-z]{1,6},? $/i;

/** A street address starting at the house number `s`; returns its end or -1. */
function matchAddressAt(text: string, s: number, out: PiiFinding[]): number {
  const b = text.charCodeAt(s - 1);
  if (isWord(b) || b === 46 || b === 45 || b === 58 || b === 47 || b === 35 && !/[\s,]/.test(text[s - 2] ?? ' ')) return -1;
  const a = stickyAt(ADDRESS_Y, text, s);
  if (!a || /copyright|\(c\)|©/.test(windowBefore(text, s, 24))) return -1;
  const unit = UNIT_BEFORE.exec(text.slice(Math.max(0, s - 20), s));
  const start = unit && !isWord(text.charCodeAt(s - unit[0].length - 1)) ? s - unit[0].length : s;
  out.push({ type: 'STREET_ADDRESS', start, end: s + a.length });
  return s + a.length;
}

// ---------------------------------------------------------------------------------------------
// PERSON: a capitalized given + family name, found by a cue before it (label, greeting, honorific,
// signature, speaker line) or, without one, by the name lexicon and the words around it.

const UP = 'A-ZÀ-ÖØ-Þ', LO = 'a-zß-öø-ÿ';
/**
 * Where a name can start: a capitalized word followed by another (after at most three particles or
 * initials), by `,`/`;` and another (`Tremblay, Marie`, `Tremblay;Marie`), or by `,`, `:` or a quote
 * (`Hi Jane,`, a speaker line, `"first_name": "Marie"`). Never starting inside a
 * hyphenated or apostrophized word (a quote before a word is fine: `name: 'Jane Doe'`), and bounded gaps, keep the scan linear: a failed candidate
 * resumes after its first word, so a match must not reach far.
 */
const NAME_CAND = new RegExp(String.raw`(?<![\w’-])(?<!\w')(?:[DLO]['’])?[${UP}][${LO}'’]*(?:-[${UP}]?[${LO}]+){0,3}\.?(?:[ \t]+` +
  String.raw`(?:(?:de|du|des|da|di|van|von|der|le|la|d['’]|O['’]|[${UP}]\.)[ ]?){0,3}[${UP}]|[,;][ \t]?[${UP}]|[,:"'])`, 'g');
const TOKEN = String.raw`(?:[DLO]['’])?\p{Lu}\p{Ll}+(?:\p{Lu}\p{Ll}+)?(?:-\p{Lu}\p{Ll}+)*`;
const UPPER = String.raw`\p{Lu}{2,}(?:-\p{Lu}{2,})*`;
const PARTICLE = String.raw`(?:de|du|des|da|di|del|della|van|von|der|den|le|la|bin|ibn|al|St\.?|Ste\.?)`;
const INITIAL = String.raw`\p{Lu}\.`;
const NAME_Y = new RegExp(String.raw`${TOKEN}(?:(?:[ \t]+${INITIAL}){0,2}[ \t]+(?:${PARTICLE}[ \t]+){0,2}(?:d['’])?` +
  String.raw`(?:${TOKEN}|${UPPER})){0,3}(?![\p{L}\p{N}_])`, 'uy');
/** The words of a matched name that carry it: not particles or initials. */
const NAME_WORD = new RegExp(String.raw`(?:[DLO]['’])?\p{Lu}[\p{L}'’-]*(?<!\.)(?![\p{L}.])`, 'gu');
const GIVEN_Y = new RegExp(String.raw` ?(${TOKEN})(?![\p{L}\p{N}_])`, 'uy');
const HONORIFIC = /^(?:Mr|Mrs|Ms|Mx|Dr|Mme|Mmes|Mlle|M|Madame|Monsieur|Mademoiselle|Docteur|Dre?|Prof|Professeur)\.?$/;

/** Labels that announce a person outright, and labels that may also name a team, a bot or a company. */
const PERSON_LABELS = [
  'Name', 'NAME', 'FULL NAME', '(?:Full|Customer|Client|Patient|Contact|Employee|Applicant|Cardholder|Legal|Your) [Nn]ame',
  'Nom', 'NOM', 'Nom complet', 'Nom de famille', 'Nom du client', 'Prénom et nom', 'Patient', 'Patiente', 'PATIENT',
  'Client', 'Cliente', 'Customer', 'Employee', 'Employé', 'Employée', 'Applicant', 'Candidat', 'Candidate', 'Beneficiary',
  'Bénéficiaire', 'Cardholder', 'Titulaire',
].join('|');
const OTHER_LABELS = [
  'Contact', 'Author', 'Auteur', 'Autrice', 'Signed', 'Signé', 'Signée', 'Attn', 'Attention', "À l'attention de", 'From',
  'De', 'To', 'À', 'Cc', 'CC', 'Bcc', 'Cci', 'Sender', 'Recipient', 'Destinataire', 'Expéditeur', 'Reporter', 'Assignee',
  'Assigned to', 'Assigné à', 'Assignée à', 'Owner', 'Reviewer', 'Reviewed-by', 'Signed-off-by', 'Co-authored-by',
  'Requester', 'Demandeur', 'Demandeuse', 'Responsable',
].join('|');
const NAME_KEY = String.raw`(?:full|customer|patient|contact|client|employee|cardholder)_?[Nn]ame["']?\s*[:=]\s*["']?`;
/** A field that holds one part of a name (`"first_name": "Marie"`, `prénom: Josée`): its value is a name, even alone. */
const CUE_NAME_FIELD = /\b(?:(?:first|last|given|family|middle|maiden|sur)[_ -]?name|[fl]name|pr[ée]nom|nom_de_famille)["']?\s*[:=]\s*["']?[ \t]*$/i;
const CUE_PERSON_LABEL = new RegExp(String.raw`(?:(?<!\p{L})(?:${PERSON_LABELS})\s*:|${NAME_KEY})[ \t]*$`, 'u');
/** `name: 'Jane Doe'` in code and fixtures: only a quoted value (YAML's `name: Setup Node` is a step). */
const CUE_OTHER_LABEL = new RegExp(String.raw`(?:(?<!\p{L})(?:${OTHER_LABELS})\s*:|\b(?:author|name|nom)["']?\s*[:=]\s*["'])[ \t]*$`, 'u');
const PERSON_PHRASES = [
  'my name is', 'my full name is', 'name is', 'i am called', "je m['’]appelle", 'je me nomme', 'mon nom est',
  'mon nom complet est', '(?:the|our|my|le|la|notre|mon|ma) (?:patient|patiente|client|cliente|customer)',
].join('|');
const OTHER_PHRASES = [
  'this is', "c'est", 'ici', 'dear', 'cher', 'chère', 'bonjour', 'bonsoir', 'hello', 'hi', 'hey', 'salut', 'allo',
  'de la part de', 'on behalf of', 'au nom de',
  '(?:e-?mail|courriel|message|letter|lettre|reminder|rappel|reply|réponse)(?: \\p{L}+)?(?: to| à)',
].join('|');
const CUE_PERSON_PHRASE = new RegExp(String.raw`\b(?:${PERSON_PHRASES})\s*,?[ \t]*$`, 'iu');
const CUE_OTHER_PHRASE = new RegExp(String.raw`\b(?:${OTHER_PHRASES})\s*,?[ \t]*$`, 'iu');
const SIGN_OFFS = [
  'regards', 'best regards', 'kind regards', 'warm regards', 'sincerely', 'cordialement', 'bien cordialement', 'salutations',
  'merci', 'thanks', 'thank you', 'cheers', 'bien à vous', 'amicalement', 'sincèrement', 'best', 'respectfully',
  'respectueusement',
].join('|');
/** A sign-off line then the name on its own line, or a dash signature ("— Jane Doe"). */
const CUE_SIGNATURE = new RegExp(String.raw`(?:\b(?:${SIGN_OFFS})\s*,?[ \t]*\r?\n[ \t]*|(?:^|\n)[ \t]*(?:[—–]|--)[ \t]*)$`, 'i');
/** Title-case words that start headings, YAML step names and UI labels, never names. */
const NOT_NAME = new Set([
  'the a an and or of for to in on at by with from new my our your this that all any no not build test',
  'tests run setup install deploy release check lint code push pull request requests cache upload',
  'download create update delete get set add remove default service server client data user users admin',
  'account main app web api config configuration node docker image images file files project team',
  'support dev prod staging production version table contents getting started overview introduction',
  'usage example examples license changelog readme notes error warning info debug note important todo',
  'fix feature bug chore docs refactor step job jobs workflow action actions environment variables',
  'value values type types key keys list map string number object array boolean null true false github',
  'gitlab google amazon microsoft apple aws azure linux windows mac ubuntu debian ios android chrome',
  'firefox monday tuesday wednesday thursday friday saturday sunday january february march april may',
  'june july august september october november december street avenue road rue boulevard city province',
  'canada quebec québec ontario toronto montreal montréal vancouver ottawa calgary customer patient',
  'client contact name names company inc ltd corp corporation corporate llc limited enterprises',
  'industries holdings partners foundation group services solutions systems technologies bank health',
  'care medical hospital clinic university college school department ministry government office centre',
  'center home page site view form model models manager system message messages response responses',
  'input output hello world thanks thank regards best dear sir madam monsieur madame équipe service',
  'client support technique santé soins merci cordialement bonjour salut mr mrs ms dr mme mlle prof',
  'read write open close start stop next previous back more less first last full quick simple basic',
  'advanced cher chère hi hey allo bonsoir prince princess lake mount fort port cape saint san',
  'santa day days falls holiday alberta manitoba saskatchewan nova scotia brunswick newfoundland labrador yukon',
  'nunavut edmonton winnipeg halifax regions region construct library libraries module modules package packages plugin plugins',
].join(' ').split(' '));

/** Words after which a capitalized pair is a place, an institution or a thing, not a person. */
const NOT_AFTER = new Set([
  'the a an le la les un une des du this that these those our your their its rue avenue boulevard boul av chemin',
  'place parc pont station métro metro école ecole collège college cégep cegep hôpital hopital université universite',
  'pavillon salle centre center institut institute fondation foundation prix award saint sainte st ste lac mont',
  'île ile route autoroute via using use class new extends implements import interface type enum module lake',
  'package library framework plugin project repo repository tool app apps api service platform',
].join(' ').split(' '));
/** Words after which a name is no longer a person's (an institution or a place named after one). */
const ORG_AFTER = /^[ \t]+(?:Foundation|Fondation|Institute|Institut|University|Université|College|Collège|Hospital|Hôpital|School|École|Street|Avenue|Boulevard|Park|Parc|Bridge|Pont|Station|Centre|Center|Award|Prize|Prix|Inc|Ltd|LLC|Corp|Group|Groupe|Library|Hall|Building|Airport|Aéroport|Lake|River|Mount|Theorem|Algorithm)\b/;

/** French articles, capitalized at the start of a sentence or a title, also begin family names ("Le Blanc"). */
const ARTICLE = /^(?:Le|La|Les|Du|Des|De)$/;

type Cue = 'person' | 'field' | 'other' | 'signature' | null;
/** Last words of the phrases: only these make the phrase regexes worth running. */
const PHRASE_END = new Set(['is', 'called', 'appelle', 'nomme', 'est', 'dear', 'cher', 'chère', 'bonjour', 'bonsoir',
  'hello', 'hi', 'hey', 'salut', 'allo', 'de', 'of', 'ici', 'patient', 'patiente', 'client', 'cliente', 'customer', 'to', 'à']);

/** What kind of cue ends just before `s`, judged first from the preceding character (cheap). */
function cueBefore(text: string, s: number): Cue {
  let j = s - 1;
  while (j >= 0 && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9)) j--;
  const c = text.charCodeAt(j);
  const before = text.slice(Math.max(0, s - 40), s);
  if (c === 10 || c === 0x2014 || c === 0x2013 || c === 45) return CUE_SIGNATURE.test(before) ? 'signature' : null;
  if (c === 58 || c === 61 || c === 34 || c === 39) { // : = " '
    if (CUE_NAME_FIELD.test(before)) return 'field';
    return CUE_PERSON_LABEL.test(before) ? 'person' : CUE_OTHER_LABEL.test(before) ? 'other' : null;
  }
  if (c === 44) return CUE_PERSON_PHRASE.test(before) ? 'person' : CUE_OTHER_PHRASE.test(before) ? 'other' : null;
  if (!isWord(c)) return null;
  let w = j;
  while (w > 0 && j - w < 16 && (isWord(text.charCodeAt(w - 1)) || text.charCodeAt(w - 1) === 39)) w--;
  const word = text.slice(w, j + 1).toLowerCase();
  if (!PHRASE_END.has(word.slice(word.lastIndexOf("'") + 1))) return null;
  return CUE_PERSON_PHRASE.test(before) ? 'person' : CUE_OTHER_PHRASE.test(before) ? 'other' : null;
}

/**
 * The word before `s` and how it sits: mid-sentence lower-case, inside a run of capitalized words
 * (not the first word of a sentence or line), or neither.
 */
function contextBefore(text: string, s: number): { word: string; kind: 'lower' | 'title' | 'none' } {
  const m = /(^|[^\p{L}\p{N}]{1,3})([\p{L}'’.]+)([^\p{L}\p{N}]{0,3})$/u.exec(text.slice(Math.max(0, s - 32), s));
  if (!m) return { word: '', kind: 'none' };
  const word = m[2].toLowerCase();
  if (m[3] !== ' ') return { word, kind: 'none' };
  if (/^\p{Ll}/u.test(m[2])) return { word, kind: 'lower' };
  const sentenceStart = (m.index === 0 && s <= 32) || /[.!?\n#*>:;(\[{"'-]/.test(m[1]);
  return { word, kind: m[2].endsWith('.') || sentenceStart ? 'none' : 'title' };
}

const SPEAKER_LINE = /(?:^|\n)[ \t]*(?:\[[\d:. APMapm]{4,12}\][ \t]*|\d{1,2}:\d\d(?::\d\d)?[ \t]+)?$/;

/**
 * Evidence from the lexicon, given first: a known given name counts 2 (1 if it is also an ordinary word,
 * like "Will"), the family name likewise (an unknown capitalized word 1, an unknown all-caps one: none),
 * and a lower-case word just before (mid-sentence) 1. Three is a name; inside a run of capitalized
 * words (a heading, a product name) it takes four.
 */
/** Endings of English nouns and participles; a family name with one is in the lexicon or is a thing ("Aurora Cluster"). */
const THING_ENDING = /(?:[^s]s|ed|ing|ion|ment|ness|er|ity|age|ure|ics|ware|ory|ent|ive|able|ible)$/;

function lexiconScore(words: readonly string[], text: string, s: number, e: number): number {
  const g = givenEvidence(words[0]);
  if (g === 'none' || words.length < 2) return 0;
  const last = words[words.length - 1]!, f = familyEvidence(last);
  // an unknown all-caps word is an acronym ("Argo CD"); an unknown word with a noun, plural or verb ending
  // is a thing ("Tim Hortons", "Argo Workflows"); an ordinary-word given name needs a known family name
  if (f === 'none' && (/^[\p{Lu}-]+$/u.test(last) || THING_ENDING.test(last) || g === 'common')) return 0;
  let score = (g === 'strong' ? 2 : 1) + (f === 'strong' ? 2 : 1);
  const before = contextBefore(text, s);
  if (NOT_AFTER.has(before.word.replace(/[.'’]/g, ''))) return 0;
  if (before.kind === 'lower') score++;
  const titleRun = before.kind === 'title' || /^ +\p{Lu}\p{Ll}/u.test(text.slice(e, e + 3));
  return titleRun ? score - 1 : score;
}

function isNotName(word: string): boolean {
  return NOT_NAME.has(word.toLowerCase().replace(/['’.]/g, ''));
}

/** A person's name starting at the candidate `s` (first word ends at `firstEnd`); its end, or -1. */
function personAt(text: string, s: number, firstEnd: number, candEnd: number, out: PiiFinding[]): number {
  let nameStart = s, cue: Cue | 'honorific' | 'speaker' = null;
  const sep = text.charCodeAt(candEnd - 1);
  // an honorific is its own cue, unless it follows a word: "Luciano M. Taranto" has an initial
  const spaced = text.charCodeAt(firstEnd) === 32 || text.charCodeAt(firstEnd) === 9;
  if (sep !== 44 && sep !== 58 && spaced && firstEnd - s <= 12 && HONORIFIC.test(text.slice(s, firstEnd)) &&
    !/[A-Za-zÀ-ÿ]+ $/.test(text.slice(Math.max(0, s - 20), s))) {
    nameStart = candEnd - 1;
    cue = 'honorific';
  } else cue = cueBefore(text, s);
  if (!cue) {
    // the cheap part of each cueless shape first: most capitalized pairs are no name at all
    const after = text.charCodeAt(firstEnd), word = text.slice(s, firstEnd);
    const record = after === 44 || after === 59; // , ;
    if (after === 34 || after === 39) return -1;
    if (record ? !isFamilyName(word) && givenEvidence(word) !== 'strong' : after === 58 ? givenEvidence(word) !== 'strong'
      : givenEvidence(word) === 'none' && !SPEAKER_LINE.test(text.slice(Math.max(0, s - 24), s))) return -1;
  }
  let name = stickyAt(NAME_Y, text, nameStart);
  if (!name) return -1;
  // without a cue, a tab ends the name: the next word is another column (`Jane Doe\tSupport`)
  if (!cue && name.includes('\t')) name = name.slice(0, name.indexOf('\t'));
  let e = nameStart + name.length;
  const words = name.match(NAME_WORD) ?? [], first = words[0];
  if (first === undefined) return -1;
  if (!cue && text.charCodeAt(e) === 58 && SPEAKER_LINE.test(text.slice(Math.max(0, s - 24), s))) cue = 'speaker';

  if (cue === 'person' || cue === 'honorific' || cue === 'field') {
    if (words.length < (cue === 'person' ? 2 : 1) || words.some(isNotName)) return -1;
  } else if (cue) {
    // a cue that may also introduce a team, a bot or a company: the lexicon must know the name
    if (words.some(isNotName)) return -1;
    const g = givenEvidence(first);
    const ok = g === 'strong' || (words.length > 1 && (g === 'common' || familyEvidence(words[words.length - 1]) === 'strong'));
    if (!ok || (cue === 'signature' && !/^[ \t]*(?:\r?\n|$|,)/.test(text.slice(e, e + 4)))) return -1;
  } else if ((text.charCodeAt(e) === 44 || text.charCodeAt(e) === 59) && words.length === 1) {
    // a record: Family, Given ("Tremblay, Marie-Ève", "Tremblay;Marie-Ève;514-…"), or Given,Family unspaced
    const second = stickyAt(GIVEN_Y, text, e + 1);
    if (!second || isNotName(first)) return -1;
    const other = second.trimStart(), before = contextBefore(text, s);
    if (isNotName(other) || before.kind === 'title' || NOT_AFTER.has(before.word) ||
      /(?:[{(\[]\s*|, +)$/.test(text.slice(Math.max(0, s - 3), s))) return -1; // code and prose lists, not records
    const ge = givenEvidence(other), fe = familyEvidence(first);
    const familyGiven = ge !== 'none' && isFamilyName(first) && (ge === 'strong' ? 2 : 1) + (fe === 'strong' ? 2 : 1) >= 3;
    const givenFamily = other === second && givenEvidence(first) === 'strong' && isFamilyName(other) &&
      familyEvidence(other) === 'strong';
    if (!familyGiven && !givenFamily) return -1;
    e += 1 + second.length;
  } else {
    if (ARTICLE.test(first)) return -1; // "Le Devoir", "La Presse"
    let n = words.findIndex(isNotName);
    if (n < 0) n = words.length;
    if (n < 2) return -1;
    if (n < words.length) e = nameStart + name.indexOf(words[n - 1], name.indexOf(words[n - 2]) + words[n - 2].length) + words[n - 1].length;
    const kept = words.slice(0, n);
    // a middle word is a given name or a family name too ("Sarah Jane Thompson", not "Athena Managed Storage")
    if (kept.slice(1, -1).some((w) => familyEvidence(w) === 'none')) return -1;
    if (lexiconScore(kept, text, s, e) < 3) return -1;
  }
  if (ORG_AFTER.test(text.slice(e, e + 16)) && cue !== 'person') return -1;
  out.push({ type: 'PERSON', start: nameStart, end: e });
  return e;
}

function scanPersons(text: string, out: PiiFinding[]): void {
  NAME_CAND.lastIndex = 0;
  for (let m; (m = NAME_CAND.exec(text));) {
    const s = m.index, candEnd = s + m[0].length;
    let firstEnd = s + 1;
    for (let c; firstEnd < candEnd && (c = text.charCodeAt(firstEnd)) !== 32 && c !== 9 && c !== 44 && c !== 58;) firstEnd++;
    const e = personAt(text, s, firstEnd, candEnd, out);
    // after a miss the next word may be the real start ("Dear Jane Doe")
    NAME_CAND.lastIndex = e > s ? e : firstEnd;
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * One pass over digits finds both kinds of digit-led candidates: runs of ≥6 digits with single
 * separators (identifiers; exact shapes are matched at each group start) and a house number
 * followed by a word (addresses).
 */
const DIGIT_LED = /(?<!\d)\d(?:(?:[ .()-]{0,2}\d){5,}|\d{0,4}(?:-\d{1,5})?[A-Za-z]?,? [A-Za-zÀ-ÿ])/g;

function scanDigitLed(text: string, out: PiiFinding[]): void {
  DIGIT_LED.lastIndex = 0;
  for (let m; (m = DIGIT_LED.exec(text));) {
    const s = m.index, end = s + m[0].length, last = text.charCodeAt(end - 1);
    let e: number;
    if (isDigit(last)) {
      const n = out.length;
      e = scanNumberRun(text, s, end, out);
      // a unit-house number like "25-5243, montée Masson" is also a digit run
      if (out.length === n && (text[end] === ',' || text[end] === ' ')) e = Math.max(e, matchAddressAt(text, s, out));
    } else {
      // the street word starts capitalized (EN, FR "Rue") or is a lowercase French type (rue, boul., chemin…)
      if (!(isUpper(last) || last >= 0xc0 || FR_TYPE_INITIALS.includes(String.fromCharCode(last)))) continue;
      e = matchAddressAt(text, s, out);
    }
    if (e > DIGIT_LED.lastIndex) DIGIT_LED.lastIndex = e;
  }
}

/** All findings in `text`, sorted by start and non-overlapping (the earlier, then longer, wins). */
export function detectPii(text: string): PiiFinding[] {
  const found: PiiFinding[] = [];
  if (text.length < 6) return found;
  scanEmails(text, found);
  scanDigitLed(text, found);
  scanIPv4(text, found);
  scanIPv6(text, found);
  scanPostal(text, found);
  scanPersons(text, found);
  if (found.length < 2) return found;
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: PiiFinding[] = [];
  let lastEnd = -1;
  for (const f of found) if (f.start >= lastEnd) { out.push(f); lastEnd = f.end; }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Session: substitution and restore

/*
 * Placeholders look like `[EMAIL_1]`: the bracketed upper-case tag is the redaction convention models
 * have seen most, so they treat it as an opaque value and copy it verbatim; it is a few tokens long;
 * and `[`, `]`, `_`, A–Z, 0–9 are never escaped by any JSON encoder (unlike `<`/`>`/`&`, which some
 * escape as \u003c…) so it survives request bodies and tool arguments unchanged. If the request
 * already contains that shape, a prefix is added (`[PII_EMAIL_1]`, then `[PII2_EMAIL_1]`, …) — the
 * first one absent from every string of the request — so restore can never touch the user's own text.
 */
const TYPE_ALT = PII_TYPES.join('|');
const USED_PREFIX = new RegExp(String.raw`\[((?:PII\d*_)?)(?:${TYPE_ALT})_\d`, 'g');

function choosePrefix(corpus: readonly string[]): string {
  const used = new Set<string>();
  for (const t of corpus) {
    if (!t.includes('[')) continue;
    USED_PREFIX.lastIndex = 0;
    for (let m; (m = USED_PREFIX.exec(t));) used.add(m[1]);
  }
  if (!used.has('')) return '';
  if (!used.has('PII_')) return 'PII_';
  let n = 2;
  while (used.has(`PII${n}_`)) n++;
  return `PII${n}_`;
}

export interface StreamRestorer { push(delta: string): string; flush(): string }

export interface PiiSession {
  substitute(text: string): string;
  readonly counts: PiiCounts;
  readonly total: number;
  typesFound(texts: readonly string[]): PiiType[];
  restore(text: string): string;
  restoreJson(jsonText: string): string;
  streamRestorer(kind: 'text' | 'json'): StreamRestorer;
}

class Session implements PiiSession {
  // Private fields: invisible to JSON.stringify, Object.keys and spread; nothing else holds them.
  readonly #toPlaceholder = new Map<string, string>();
  readonly #toValue = new Map<string, string>();
  readonly #prefixes = new Set<string>(); // proper prefixes of issued placeholders, for streaming
  readonly #next: Partial<Record<PiiType, number>> = {};
  readonly #placeholderRe: RegExp;
  readonly #prefix: string;
  #maxLen = 0;

  constructor(corpus: readonly string[]) {
    this.#prefix = choosePrefix(corpus);
    this.#placeholderRe = new RegExp(String.raw`\[${this.#prefix}(?:${TYPE_ALT})_\d+\]`, 'g');
  }

  get counts(): PiiCounts { return { ...this.#next } }
  get total(): number { return this.#toValue.size }

  substitute(text: string): string {
    const found = detectPii(text);
    if (!found.length) return text;
    let out = '', pos = 0;
    for (const f of found) {
      out += text.slice(pos, f.start) + this.#placeholderFor(f.type, text.slice(f.start, f.end));
      pos = f.end;
    }
    return out + text.slice(pos);
  }

  typesFound(texts: readonly string[]): PiiType[] {
    const seen = new Set<PiiType>();
    for (const t of texts) for (const f of detectPii(t)) seen.add(f.type);
    return PII_TYPES.filter((t) => seen.has(t));
  }

  restore(text: string): string { return this.#restoreWith(text, false) }
  restoreJson(jsonText: string): string { return this.#restoreWith(jsonText, true) }

  streamRestorer(kind: 'text' | 'json'): StreamRestorer {
    const json = kind === 'json';
    let held = '';
    return {
      push: (delta: string): string => {
        if (this.#maxLen === 0) return delta;
        if (!held && !delta.includes('[')) return delta;
        let s = held + delta;
        held = '';
        const b = s.lastIndexOf('[');
        if (b >= 0 && s.length - b < this.#maxLen && this.#prefixes.has(s.slice(b))) {
          held = s.slice(b);
          s = s.slice(0, b);
        }
        return this.#restoreWith(s, json);
      },
      // What is held is a proper prefix of a placeholder, so it contains none: emit it as is.
      flush: (): string => { const h = held; held = ''; return h },
    };
  }

  #placeholderFor(type: PiiType, value: string): string {
    let ph = this.#toPlaceholder.get(value);
    if (ph) return ph;
    const n = (this.#next[type] ?? 0) + 1;
    this.#next[type] = n;
    ph = `[${this.#prefix}${type}_${n}]`;
    this.#toPlaceholder.set(value, ph);
    this.#toValue.set(ph, value);
    for (let i = 1; i < ph.length; i++) this.#prefixes.add(ph.slice(0, i));
    this.#maxLen = Math.max(this.#maxLen, ph.length);
    return ph;
  }

  #restoreWith(text: string, json: boolean): string {
    if (this.#maxLen === 0 || !text.includes('[')) return text;
    return text.replace(this.#placeholderRe, (ph) => {
      const v = this.#toValue.get(ph);
      return v === undefined ? ph : json ? JSON.stringify(v).slice(1, -1) : v;
    });
  }

  toJSON(): object { return {} }
  [Symbol.for('nodejs.util.inspect.custom')](): string { return 'PiiSession {}' }
}

/** One per request. `corpus` = every string of the request, so placeholders cannot collide with it. */
export function createPiiSession(corpus: readonly string[]): PiiSession {
  return new Session(corpus);
}
