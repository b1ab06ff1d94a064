import { inspect } from 'node:util';
import { createPiiSession, detectPii, type PiiSession, type StreamRestorer } from '../../lambdas/core/pii';
import { packagePeople, realSourceFiles } from '../fixtures/pii-corpus/corpus';

const EMAIL = 'jane.doe@gmail.com';
const PHONE = '(514) 555-0142';
const PROMPT = `Hi, my name is Jane Doe. Write to ${EMAIL} or call ${PHONE}.`;

function sessionFor(...texts: string[]): PiiSession {
  return createPiiSession(texts);
}
/** Feeds `chunks` through a restorer and returns everything it emitted. */
function stream(r: StreamRestorer, chunks: readonly string[]): string {
  return chunks.map((c) => r.push(c)).join('') + r.flush();
}

describe('detectPii', () => {
  it('returns sorted, non-overlapping offsets and no values', () => {
    const found = detectPii(PROMPT);
    expect(found).toEqual([
      { type: 'PERSON', start: 15, end: 23 },
      { type: 'EMAIL', start: 34, end: 34 + EMAIL.length },
      { type: 'PHONE', start: PROMPT.indexOf(PHONE), end: PROMPT.indexOf(PHONE) + PHONE.length },
    ]);
  });

  it('leaves ordinary code, ids and versions alone', () => {
    const code = [
      'const MAX = 4111111111; const ids = [4532015112830366, 1718900000123];',
      'git@github.com:org/repo.git  arn:aws:iam::123456789012:role/x  #A1B2C3  localhost:3000',
      'model: anthropic.claude-3-5-sonnet-20240620-v1:0, version: 1.2.3.4, sha 3f786850e387550fdab836ed7e6dc881de23001b',
      'metadata:\n  name: nginx-deployment\n- name: Setup Node\n"name": "my-package"',
    ].join('\n');
    expect(detectPii(code)).toEqual([]);
  });
});

describe('PERSON', () => {
  const persons = (t: string) => detectPii(t).filter((f) => f.type === 'PERSON').map((f) => t.slice(f.start, f.end));

  it.each([
    ['I met Sarah Thompson yesterday', ['Sarah Thompson']],
    ['Marie-Ève Tremblay a appelé ce matin', ['Marie-Ève Tremblay']],
    ['Tremblay,Marie-Ève,514-555-0123,active', ['Tremblay,Marie-Ève']],
    ["Ask Patrick O'Brien and Sean McDonald about Sarah Thompson's draft", ["Patrick O'Brien", 'Sean McDonald', 'Sarah Thompson']],
    ['Le dossier de Jean TREMBLAY est prêt', ['Jean TREMBLAY']],
    ['[09:14] Sarah Chen: did it ship?\n[09:15] Priya: yes', ['Sarah Chen', 'Priya']],
    ['Hi Jane,\n\nthe build is green.', ['Jane']],
    ["const user = { name: 'Jane Doe', age: 3 };", ['Jane Doe']],
    ['Reporter: Kevin Nguyen\nAssignee: Julie Gagnon\nCc: Pierre-Luc Bouchard', ['Kevin Nguyen', 'Julie Gagnon', 'Pierre-Luc Bouchard']],
    ['{"first_name": "Marie-Ève", "last_name": "Tremblay", "city": "Laval"}', ['Marie-Ève', 'Tremblay']],
    ['nom;prénom;tél\nTremblay;Marie-Ève;514-555-0101', ['Tremblay;Marie-Ève']],
    ['first,last,phone\nSarah,Thompson,514-555-0101', ['Sarah,Thompson']],
  ])('finds the names in %j', (text, names) => {
    expect(persons(text)).toEqual(names);
  });

  it.each([
    'From: Stripe Billing', 'Author: Stack Overflow', 'Hi Copilot Chat, explain this', 'Getting Started With Jasmine Core',
    'Flights to Prince George are late', 'Le bureau est boulevard René-Lévesque, près de la station Jean-Talon',
    'import { Victoria, Austin, Jordan } from "./regions"', 'The RDS DB Instance or Aurora Cluster has no backups',
    "basicConstraints OID '2.5.29.19'", 'Intrinsic(Literal(K), M, Clone(options))', "title: 'Release', name: 'Build'",
  ])('finds nothing in %j', (text) => {
    expect(detectPii(text)).toEqual([]);
  });
});

describe('CA_SIN', () => {
  const sins = (t: string) => detectPii(t).filter((f) => f.type === 'CA_SIN').map((f) => t.slice(f.start, f.end));

  it('finds a SIN after its cue, including the 0-led example numbers, and a dashed 3-3-3 in prose', () => {
    expect(sins('SIN: 046 454 286')).toEqual(['046 454 286']);
    expect(sins('NAS 046-454-286')).toEqual(['046-454-286']);
    expect(sins('Mon numéro d’assurance sociale est le 130 692 544.')).toEqual(['130 692 544']);
    expect(sins('Please update my file: 211-757-521, thanks')).toEqual(['211-757-521']);
  });

  it('leaves grouped figures alone: quantities with a unit, uncued space groups, table columns', () => {
    expect(sins('SIN lookup read 434 691 556 bytes')).toEqual([]);
    expect(sins('The upload was 434 691 556 bytes, the index 130 692 544 octets.')).toEqual([]);
    expect(sins('Total processed: 434 691 556')).toEqual([]);
    expect(sins('| region | count |\n| east | 211-757-521 |')).toEqual([]);
    expect(sins('east 211-757-521 west 493-202-428')).toEqual([]);
  });
});

describe('PiiSession.substitute', () => {
  it('uses one placeholder per distinct value across all texts of the request', () => {
    const s = sessionFor(PROMPT, `again: ${EMAIL}`);
    const a = s.substitute(PROMPT);
    const b = s.substitute(`again: ${EMAIL}, and ops@acme-corp.ca`);
    expect(a).toBe('Hi, my name is [PERSON_1]. Write to [EMAIL_1] or call [PHONE_1].');
    expect(b).toBe('again: [EMAIL_1], and [EMAIL_2]');
    expect(s.counts).toEqual({ PERSON: 1, EMAIL: 2, PHONE: 1 });
    expect(s.total).toBe(4);
  });

  it('returns text without personal data unchanged and issues nothing', () => {
    const s = sessionFor('nothing here');
    expect(s.substitute('nothing here: const x = 42;')).toBe('nothing here: const x = 42;');
    expect(s.total).toBe(0);
    expect(s.counts).toEqual({});
  });

  it('makes placeholders that survive JSON escaping unchanged', () => {
    const s = sessionFor(PROMPT);
    for (const ph of s.substitute(PROMPT).match(/\[[^\]]+\]/g)!) expect(JSON.stringify(ph)).toBe(`"${ph}"`);
  });

  it('avoids placeholder shapes already present in the request, deterministically', () => {
    const user = 'Redact like [EMAIL_1] and [PHONE_3]. My address: ' + EMAIL;
    const s = sessionFor(user);
    const out = s.substitute(user);
    expect(out).toBe('Redact like [EMAIL_1] and [PHONE_3]. My address: [PII_EMAIL_1]');
    // the user's own "[EMAIL_1]" is not ours: restore must leave it alone
    expect(s.restore(out)).toBe(user);
    expect(s.restore('[EMAIL_1] vs [PII_EMAIL_1]')).toBe(`[EMAIL_1] vs ${EMAIL}`);

    const both = `[EMAIL_2] [PII_PHONE_1] ${EMAIL}`;
    expect(sessionFor(both).substitute(both)).toBe('[EMAIL_2] [PII_PHONE_1] [PII2_EMAIL_1]');
  });

  it('typesFound reports types without substituting', () => {
    const s = sessionFor(PROMPT);
    expect(s.typesFound([PROMPT, 'SIN 046 454 286 is invalid; NAS 130 692 544 is valid'])).toEqual(['EMAIL', 'PHONE', 'CA_SIN', 'PERSON']);
    expect(s.total).toBe(0);
  });
});

describe('PiiSession.restore', () => {
  const s = sessionFor(PROMPT);
  const sub = s.substitute(PROMPT);

  it('restores issued placeholders and passes unknown ones through', () => {
    expect(s.restore(sub)).toBe(PROMPT);
    expect(s.restore('Sent to [EMAIL_1]; [EMAIL_9] and [PHONE_1x] and [NAME_1] are not ours.'))
      .toBe(`Sent to ${EMAIL}; [EMAIL_9] and [PHONE_1x] and [NAME_1] are not ours.`);
  });

  it('restoreJson escapes restored values for inside a JSON string', () => {
    const text = 'My name is Jane\tDoe, I said "hi"'; // the tab belongs to the name
    const t = sessionFor(text);
    const args = JSON.stringify({ to: t.substitute(text) });
    expect(args).toBe('{"to":"My name is [PERSON_1], I said \\"hi\\""}');
    const restored = t.restoreJson(args);
    expect(restored).toBe('{"to":"My name is Jane\\tDoe, I said \\"hi\\""}');
    expect(JSON.parse(restored)).toEqual({ to: text });
    expect(t.restore(args)).toBe('{"to":"My name is Jane\tDoe, I said \\"hi\\""}'); // raw: not JSON-safe
  });
});

describe('PiiSession.streamRestorer', () => {
  const text = 'Name: Marie-Ève Côté\tTremblay, email marie@videotron.ca, phone 438-555-0199, card 4111 1111 1111 1111.';
  const s = sessionFor(text);
  const sub = s.substitute(text);
  const reply = `Done: ${sub} [EMAIL_1][EMAIL_1] [ [EMAIL_ [EMAIL_9] [PHONE_1`;
  const expected = s.restore(reply);
  const jsonReply = JSON.stringify({ summary: reply, n: 1 });
  const jsonExpected = s.restoreJson(jsonReply);

  it('setup: the reply really contains several placeholders', () => {
    expect(sub.match(/\[[A-Z_]+_\d\]/g)).toHaveLength(4);
    expect(expected).toContain('Marie-Ève Côté\tTremblay');
    expect(JSON.parse(jsonExpected).summary).toBe(expected);
  });

  it.each(['text', 'json'] as const)('%s: restores at every single split point', (kind) => {
    const [input, want] = kind === 'text' ? [reply, expected] : [jsonReply, jsonExpected];
    for (let i = 0; i <= input.length; i++) {
      expect(stream(s.streamRestorer(kind), [input.slice(0, i), input.slice(i)])).toBe(want);
    }
  });

  it.each(['text', 'json'] as const)('%s: restores with 1-character chunks and every pair of split points', (kind) => {
    const [input, want] = kind === 'text' ? [reply, expected] : [jsonReply, jsonExpected];
    expect(stream(s.streamRestorer(kind), [...input])).toBe(want);
    const short = input.slice(0, 60);
    const wantShort = (kind === 'text' ? s.restore(short) : s.restoreJson(short));
    for (let i = 0; i <= short.length; i++) {
      for (let j = i; j <= short.length; j++) {
        expect(stream(s.streamRestorer(kind), [short.slice(0, i), short.slice(i, j), short.slice(j)])).toBe(wantShort);
      }
    }
  });

  it('holds back only a possible placeholder prefix and emits everything else at once', () => {
    const r = s.streamRestorer('text');
    expect(r.push('Hello ')).toBe('Hello ');
    expect(r.push('see [EMA')).toBe('see ');
    expect(r.push('IL_1] and [')).toBe('marie@videotron.ca and ');
    expect(r.push('x] [PERSON_')).toBe('[x] ');
    expect(r.push('99]')).toBe('[PERSON_99]');
    expect(r.push(' [EMAIL_1')).toBe(' ');
    expect(r.flush()).toBe('[EMAIL_1');
  });

  it('is an identity pass-through when the session issued nothing', () => {
    const r = sessionFor('no pii').streamRestorer('text');
    for (const d of ['[EMAIL_', '1]', '[', 'x']) expect(r.push(d)).toBe(d);
    expect(r.flush()).toBe('');
  });
});

describe('privacy of the session object', () => {
  it('reveals no values or placeholders through serialization or inspection', () => {
    const s = sessionFor(PROMPT);
    s.substitute(PROMPT);
    for (const dump of [JSON.stringify(s), JSON.stringify({ ...s }), inspect(s, { showHidden: true, depth: 5 }), String(Object.keys(s))]) {
      expect(dump).not.toContain('jane');
      expect(dump).not.toContain('555');
      expect(dump).not.toContain('EMAIL');
    }
    expect(JSON.stringify(s)).toBe('{}');
  });
});

describe('round trip of real source files', () => {
  it('brings 1,000 node_modules files back byte-identical', () => {
    const files = realSourceFiles(1000);
    expect(files.length).toBeGreaterThanOrEqual(990);
    const changed: string[] = [];
    for (const f of files) {
      const s = createPiiSession([f.text]);
      if (s.restore(s.substitute(f.text)) !== f.text) changed.push(f.path);
    }
    expect(changed).toEqual([]);
  });

  it('substitutes nothing in 1,000 source files, but the names and addresses of their own and credited authors', () => {
    // code, not tests or declaration files: those carry example data (AWS's "Mary Major", "100 Main Street")
    const files = realSourceFiles(1000, /(?<!\.d)\.(?:js|mjs|cjs|ts)$/).filter((f) => !/[/.](?:tests?|spec|__tests__)[/.]/.test(f.path));
    expect(files.length).toBeGreaterThanOrEqual(950);
    const found: string[] = [];
    let authors = 0;
    for (const f of files) {
      // Its authors: those its package names, and those the file itself credits ("originally written by …",
      // "a paper by …, … & …"): real people, rightly found.
      const credits = [...f.text.matchAll(/\bby ([A-Z][^\n]{0,80})/g)].map((m) => m[1]).join('\n');
      const people = `${packagePeople(f.path)}\n${credits}`;
      for (const x of detectPii(f.text)) {
        const value = f.text.slice(x.start, x.end);
        if ((x.type === 'PERSON' || x.type === 'EMAIL') && people.includes(value)) authors++;
        else if (x.type === 'PHONE' && /555-?01\d\d$/.test(value)) continue; // fictional by design, found like any phone
        else found.push(`${x.type} ${JSON.stringify(value)} in ${f.path.replace(/.*node_modules\//, '')}`);
      }
    }
    expect(found).toEqual([]);
    expect(authors).toBeLessThan(files.length / 20); // setup: the exemption is for a few licence lines
  });
});
