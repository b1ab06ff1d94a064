import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import {
  canonicalJson, checkpointDue, checkpointPayload, entryHash, GENESIS_HASH, newEntry, verifyChain,
  type StoredCheckpoint, type StoredEntry, type StoredMarker,
} from '../../lambdas/core/ledger';
import { CustodyEvent } from '../../lambdas/core/custody';
import { custodyEvent } from '../support/custody';

describe('canonicalJson', () => {
  it('sorts keys by code unit at every level, drops undefined, keeps array order, no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [3, { z: null, y: 'é"\n' }], c: undefined, B: true }))
      .toBe('{"B":true,"a":[3,{"y":"é\\"\\n","z":null}],"b":1}');
  });

  it('is independent of property insertion order', () => {
    expect(canonicalJson({ x: 1, y: { p: 2, q: 3 } })).toBe(canonicalJson({ y: { q: 3, p: 2 }, x: 1 }));
  });

  it('refuses what has no single integer spelling', () => {
    for (const bad of [1.5, NaN, Infinity, -0, 2 ** 60]) expect(() => canonicalJson({ n: bad })).toThrow(/integers/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/cannot serialize/);
  });
});

describe('entry hash', () => {
  it('is SHA-256 of the canonical entry, which carries the previous hash', () => {
    const event = custodyEvent();
    const e = newEntry(event, 1, GENESIS_HASH, new Date('2025-01-15T12:00:02.000Z'));
    const text = canonicalJson({ v: 1, seq: 1, prev_hash: GENESIS_HASH, recorded_at: '2025-01-15T12:00:02.000Z', event });
    expect(e.hash).toBe(createHash('sha256').update(text).digest('hex'));
    expect(GENESIS_HASH).toBe('0'.repeat(64));
    const other = newEntry(event, 1, 'f'.repeat(64), new Date('2025-01-15T12:00:02.000Z'));
    expect(other.hash).not.toBe(e.hash);
  });
});

describe('custody event schema, version 1', () => {
  it('reads events written before `attempts` existed, and keeps attempts (so they are hashed) when present', () => {
    const before = custodyEvent();
    expect(CustodyEvent.parse(before)).toEqual(before);
    const attempts = [
      { provider: 'azure_openai', region: 'canadaeast', upstream_id: 'gpt-4o', outcome: 'throttled' },
      { provider: 'openai_compatible', region: 'canada', upstream_id: 'gpt-4o-2024-11-20', outcome: 'ok' },
    ];
    const after = CustodyEvent.parse({ ...before, attempts });
    expect(after.attempts).toEqual(attempts);
    expect(after.schema_version).toBe(1);
    expect(newEntry(after, 1, GENESIS_HASH, new Date(0)).hash).not.toBe(newEntry(before, 1, GENESIS_HASH, new Date(0)).hash);
  });
});

describe('checkpointDue', () => {
  const policy = { every: 10, intervalMs: 3_600_000 };
  it('signs the first append, one reaching a multiple of N, and the first of a new hour', () => {
    expect(checkpointDue(policy, 1, 1, '2025-01-15T12:00:00Z', null)).toBe(true);
    expect(checkpointDue(policy, 2, 2, '2025-01-15T12:10:00Z', '2025-01-15T12:00:00Z')).toBe(false);
    expect(checkpointDue(policy, 10, 10, '2025-01-15T12:10:00Z', '2025-01-15T12:09:00Z')).toBe(true);
    expect(checkpointDue(policy, 11, 11, '2025-01-15T13:00:01Z', '2025-01-15T12:59:59Z')).toBe(true);
  });

  it('judges a block of entries appended together by the multiples it reaches', () => {
    expect(checkpointDue(policy, 8, 12, '2025-01-15T12:10:00Z', '2025-01-15T12:09:00Z')).toBe(true); // passes 10
    expect(checkpointDue(policy, 11, 20, '2025-01-15T12:10:00Z', '2025-01-15T12:09:00Z')).toBe(true); // ends on 20
    expect(checkpointDue(policy, 11, 19, '2025-01-15T12:10:00Z', '2025-01-15T12:09:00Z')).toBe(false);
    expect(checkpointDue(policy, 1, 7, '2025-01-15T12:10:00Z', null)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// verifyChain over in-memory items

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KEY_REF = 'local:test';
const verifySignature = (payload: Buffer, sig: string, ref: string) => ref === KEY_REF && verify('sha256', payload, publicKey, Buffer.from(sig, 'base64'));

function chain(n: number, keyId = 'key_a') {
  const entries: StoredEntry[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e = newEntry(custodyEvent({ key_id: keyId }), seq, prev, new Date(Date.UTC(2025, 0, 15, 12, 0, seq)));
    entries.push({ ...e, sk_seq: seq, block: seq, key_id: keyId, request_id: e.event.request_id });
    prev = e.hash;
  }
  const markers = new Map<string, StoredMarker | null>(entries.map((e) => [e.request_id, { request_id: e.request_id, key_id: keyId, block: e.seq, claimed_at: e.recorded_at }]));
  const c = { keyId, entries, markers, checkpoints: [] as StoredCheckpoint[], anchored: [] as StoredCheckpoint[] };
  if (n) signAt(c, 1); // the policy always signs the first block
  return c;
}

function signAt(c: ReturnType<typeof chain>, seq: number, hash = c.entries[seq - 1].hash): StoredCheckpoint {
  const body = { key_id: c.keyId, seq, hash, time: '2025-01-15T13:00:00.000Z' };
  const cp = { ...body, sk_seq: seq, alg: 'ECDSA_SHA_256', signing_key: KEY_REF, signature: sign('sha256', checkpointPayload(body), privateKey).toString('base64') };
  c.checkpoints.push(cp);
  c.anchored.push({ ...cp });
  return cp;
}

/** Recomputes every hash from `from` on, as someone rewriting history consistently would. */
function rehash(entries: StoredEntry[], from: number): void {
  for (let i = from; i < entries.length; i++) {
    const e = entries[i];
    e.prev_hash = i === 0 ? GENESIS_HASH : entries[i - 1].hash;
    e.hash = entryHash({ v: e.v, seq: e.seq, prev_hash: e.prev_hash, recorded_at: e.recorded_at, event: e.event });
  }
}

const POLICY = { every: 100, intervalMs: 3_600_000 };
/** Verification's clock: the chains' entries are recorded from 12:00:01, checkpoints signed at 13:00. */
const NOW = new Date('2025-01-15T13:30:00.000Z');
const run = (c: ReturnType<typeof chain>, now = NOW) => verifyChain({ ...c, policy: POLICY, now, verifySignature });

describe('verifyChain', () => {
  it('passes an intact chain and reports its head and signed coverage', () => {
    const c = chain(6);
    signAt(c, 4);
    const r = run(c);
    expect(r).toMatchObject({ ok: true, entries: 6, head: { seq: 6, hash: c.entries[5].hash }, checkpoints: 2, last_checkpoint: { seq: 4 }, unsigned_tail: 2, in_flight: 0 });
    expect(r.problems).toEqual([]);
  });

  it('catches a modified field at its seq', () => {
    const c = chain(5);
    c.entries[2].event = { ...c.entries[2].event, cost_micro_cad: 1 };
    expect(run(c).problems[0]).toEqual({ key_id: 'key_a', seq: 3, problem: expect.stringContaining('does not match its hash') });
  });

  it('catches a deleted entry', () => {
    const c = chain(5);
    c.entries.splice(1, 1);
    expect(run(c).problems[0]).toMatchObject({ seq: 2, problem: expect.stringContaining('entry 2 is missing') });
  });

  it('catches entries swapped between slots, and swapped with their seq fixed up', () => {
    const c = chain(5);
    [c.entries[1], c.entries[2]] = [{ ...c.entries[2], sk_seq: 2 }, { ...c.entries[1], sk_seq: 3 }];
    expect(run(c).problems[0]).toMatchObject({ seq: 2, problem: expect.stringContaining('moved or reordered') });
    const d = chain(5);
    const [x, y] = [d.entries[1], d.entries[2]];
    d.entries[1] = { ...y, seq: 2, sk_seq: 2 };
    d.entries[2] = { ...x, seq: 3, sk_seq: 3 };
    expect(run(d).problems[0]).toMatchObject({ seq: 2, problem: expect.stringContaining('prev_hash does not link') });
  });

  it('catches a forged entry inserted mid-chain, and one appended with a valid link but no writer marker', () => {
    const c = chain(4);
    const forged = newEntry(custodyEvent({ key_id: 'key_a' }), 3, c.entries[1].hash, new Date());
    c.entries.splice(2, 0, { ...forged, sk_seq: 3, block: 3, key_id: 'key_a', request_id: forged.event.request_id });
    c.entries.slice(3).forEach((e) => { e.sk_seq! += 1; }); // later items shifted, content untouched
    expect(run(c).problems[0]).toMatchObject({ seq: 3 });

    const d = chain(3);
    const tail = newEntry(custodyEvent({ key_id: 'key_a' }), 4, d.entries[2].hash, new Date());
    d.entries.push({ ...tail, sk_seq: 4, block: 4, key_id: 'key_a', request_id: tail.event.request_id });
    expect(run(d).problems[0]).toMatchObject({ seq: 4, problem: expect.stringContaining('no idempotency marker') });
  });

  it('catches a consistent rewrite of the whole chain through the signed checkpoint', () => {
    const c = chain(6);
    signAt(c, 5);
    c.entries[0].event = { ...c.entries[0].event, model: 'other-model' };
    rehash(c.entries, 0);
    expect(run(c).problems).toEqual([1, 5].map((seq) => ({ key_id: 'key_a', seq, problem: expect.stringContaining('history rewritten') })));
    // …and re-pointing the checkpoint at the new hash breaks its signature.
    for (const cp of [...c.checkpoints, ...c.anchored].filter((x) => x.seq === 5)) cp.hash = c.entries[4].hash;
    expect(run(c).problems.find((p) => p.seq === 5)).toMatchObject({ problem: expect.stringContaining('signature is not valid') });
  });

  it('rejects checkpoints signed by another key', () => {
    const c = chain(2);
    const cp = signAt(c, 2);
    cp.signing_key = 'local:someone-else';
    expect(run(c).ok).toBe(false);
  });

  it('catches a truncated tail through a checkpoint beyond it, or a marker beyond it', () => {
    const c = chain(6);
    signAt(c, 6);
    for (const e of c.entries.splice(4)) c.markers.delete(e.request_id);
    expect(run(c).problems[0]).toMatchObject({ seq: 6, problem: expect.stringContaining('entries deleted') });

    const d = chain(6);
    d.entries.splice(3);
    expect(run(d).problems[0]).toMatchObject({ seq: 4, problem: expect.stringContaining('entries deleted') });
  });

  it('counts a request claimed within the redelivery window, not yet appended, as in flight, not as a break', () => {
    const c = chain(3);
    const claimed_at = '2025-01-15T13:29:00.000Z';
    c.markers.set('req_pending', { request_id: 'req_pending', key_id: 'key_a', block: 4, claimed_at });
    c.markers.set('req_lost_race', { request_id: 'req_lost_race', key_id: 'key_a', block: 2, claimed_at });
    expect(run(c)).toMatchObject({ ok: true, in_flight: 2 });
  });

  it('flags a claim older than the redelivery window that never reached the chain (a deleted tail\'s marker)', () => {
    const c = chain(4);
    c.entries.splice(3); // the last block deleted; its marker names the block after the new head
    expect(run(c, new Date('2025-01-15T12:30:00.000Z'))).toMatchObject({ ok: true, in_flight: 1 });
    expect(run(c).problems).toEqual([{ key_id: 'key_a', seq: 4, problem: expect.stringContaining('longer ago than the redelivery window') }]);
    // A marker that does not say when it was claimed was not written by the writer: never in flight.
    const d = chain(2);
    d.markers.set('req_x', { request_id: 'req_x', key_id: 'key_a', block: 3 });
    expect(run(d, new Date('2025-01-15T12:00:03.000Z')).problems[0]).toMatchObject({ seq: 3 });
  });

  it('requires the checkpoints the policy always writes (the first block, each block reaching a multiple of N)', () => {
    const c = chain(7);
    c.checkpoints.length = 0;
    c.anchored.length = 0;
    expect(run(c).problems).toEqual([{ key_id: 'key_a', seq: 1, problem: expect.stringContaining('policy requires at seq 1 is missing') }]);
    signAt(c, 1);
    const every3 = verifyChain({ ...c, policy: { every: 3, intervalMs: 3_600_000 }, now: NOW, verifySignature });
    expect(every3.problems.map((p) => p.seq)).toEqual([3, 6]);
    // A consistent rewrite with every checkpoint deleted, from the table and the anchor, still fails.
    c.entries[1].event = { ...c.entries[1].event, cost_micro_cad: 1 };
    rehash(c.entries, 0);
    c.checkpoints.length = 0;
    c.anchored.length = 0;
    expect(run(c).ok).toBe(false);
  });

  it("leaves the head block's due checkpoint pending within the redelivery window", () => {
    const c = chain(1);
    c.checkpoints.length = 0;
    c.anchored.length = 0;
    expect(run(c, new Date('2025-01-15T12:01:00.000Z'))).toMatchObject({ ok: true, pending_checkpoints: 1 });
    expect(run(c).ok).toBe(false);
  });

  it('holds the table checkpoints to their anchored copies', () => {
    const missing = chain(3);
    missing.anchored.length = 0; // signed at 13:00, verified at 13:30: anchoring may still be under way
    expect(run(missing)).toMatchObject({ ok: true, pending_checkpoints: 1 });
    expect(run(missing, new Date('2025-01-15T14:30:00.000Z')).problems[0]).toMatchObject({ seq: 1, problem: expect.stringContaining('missing from the anchor') });

    const deleted = chain(6);
    signAt(deleted, 6);
    deleted.checkpoints.splice(1); // the table's checkpoint at 6 deleted; the anchor keeps it
    expect(run(deleted).problems).toEqual([{ key_id: 'key_a', seq: 6, problem: expect.stringContaining('missing from the table') }]);

    const differs = chain(3);
    const other = signAt(chain(3), 1); // another valid signature over another chain's seq 1
    differs.checkpoints[0] = other;
    expect(run(differs).problems[0]).toMatchObject({ seq: 1, problem: expect.stringContaining('differs from its anchored copy') });
  });

  it('catches a tail deleted with its markers and checkpoints through the anchor', () => {
    const c = chain(8);
    signAt(c, 5);
    for (const e of c.entries.splice(3)) c.markers.delete(e.request_id);
    c.checkpoints.splice(1);
    expect(run(c).problems[0]).toMatchObject({ seq: 5, problem: expect.stringContaining('missing from the table') });
  });
});
