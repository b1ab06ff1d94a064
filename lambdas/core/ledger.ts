import { createHash } from 'node:crypto';
import type { CustodyEvent } from './custody';

/**
 * The custody ledger's pure rules: how an entry is serialized and hashed, how entries chain, what a checkpoint
 * signs, when one is due, and how a stored chain is checked. The one home of "the canonical form hashed into
 * the ledger"; lambdas/store/ledger.ts only moves these objects in and out of DynamoDB.
 *
 * CANONICAL SERIALIZATION (`canonicalJson`): JSON text with object keys sorted by UTF-16 code units, no
 * whitespace, strings escaped as JSON.stringify does, integers only (no fractions, exponents or -0), arrays in
 * order, properties whose value is undefined omitted. For this value domain it is byte-identical to the JSON
 * Canonicalization Scheme (RFC 8785), so any JCS library reproduces it.
 *
 * ENTRY: `{ v: 1, seq, prev_hash, recorded_at, event }` where `event` is the CustodyEvent exactly as stored
 * (it carries key_id and request_id), seq counts from 1 per key, recorded_at is when the ledger wrote it.
 * ENTRY HASH: lowercase hex SHA-256 of the UTF-8 bytes of canonicalJson(entry). The previous entry's hash is
 * inside the entry (`prev_hash`), so each hash commits to the whole chain before it. The first entry's
 * prev_hash is GENESIS_HASH, 64 zeros.
 *
 * CHECKPOINT: a signature (ECDSA P-256, SHA-256, DER) over the UTF-8 bytes of
 * canonicalJson({ v: 1, type: 'ni.ledger.checkpoint', key_id, seq, hash, time }), hash being entry seq's hash:
 * it pins the whole chain up to seq, so rewriting history consistently (every hash recomputed) still fails.
 * Each checkpoint is also anchored outside the ledger table, where it cannot be rewritten or deleted (S3 Object
 * Lock; locally write-once files): verification requires the checkpoints the policy always writes and compares
 * the table's with the anchor's, so deleting a chain's tail together with its checkpoints is caught too.
 */

export const LEDGER_FORMAT_VERSION = 1;
export const GENESIS_HASH = '0'.repeat(64);
export const CHECKPOINT_TYPE = 'ni.ledger.checkpoint';
export const SIGNING_ALGORITHM = 'ECDSA_SHA_256';

export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) throw new Error(`ledger values are integers, got ${value}`);
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new Error(`cannot serialize a ${typeof value} into the ledger`);
  }
}

export const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** What is hashed: the stored event plus its place in the chain. */
export interface LedgerEntry {
  v: number;
  seq: number;
  prev_hash: string;
  recorded_at: string;
  event: CustodyEvent;
}

export const entryHash = (e: LedgerEntry) => sha256Hex(canonicalJson(e));

export function newEntry(event: CustodyEvent, seq: number, prevHash: string, recordedAt: Date): LedgerEntry & { hash: string } {
  const entry: LedgerEntry = { v: LEDGER_FORMAT_VERSION, seq, prev_hash: prevHash, recorded_at: recordedAt.toISOString(), event };
  return { ...entry, hash: entryHash(entry) };
}

export interface CheckpointBody {
  key_id: string;
  seq: number;
  hash: string;
  time: string;
}

/** The exact bytes a checkpoint signature covers. */
export const checkpointPayload = (c: CheckpointBody) =>
  Buffer.from(canonicalJson({ v: LEDGER_FORMAT_VERSION, type: CHECKPOINT_TYPE, key_id: c.key_id, seq: c.seq, hash: c.hash, time: c.time }), 'utf8');

/** Where anchored checkpoints live in the anchor bucket: the writer may only put objects under it (lib/custody.ts). */
export const ANCHOR_PREFIX = 'checkpoints/';

/** A signed checkpoint's content as one comparable string (what the table and the anchor must agree on). */
export const checkpointText = (c: StoredCheckpoint) =>
  canonicalJson({ key_id: c.key_id, seq: c.seq, hash: c.hash, time: c.time, alg: c.alg, signing_key: c.signing_key, signature: c.signature });

export interface CheckpointPolicy {
  /** Sign every `every`-th entry of a chain… */
  every: number;
  /** …and the first entry of each `intervalMs` time bucket, so a quiet key is not left unsigned for long. */
  intervalMs: number;
}

export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = { every: 100, intervalMs: 3_600_000 };

/**
 * How long after its claim a request can still be completed by a redelivery (its queue's receives plus
 * margin: lib/custody.ts keeps the writer's queues within it). A claim older than this that is not in the chain
 * is not in flight: its entries were deleted, or its event sits in a dead-letter queue. Likewise a checkpoint
 * due or anchored this long ago must exist by now.
 */
export const REDELIVERY_WINDOW_MS = 3_600_000;

/**
 * The checkpoints the policy always writes, whatever the clock: at the end of the block holding seq 1 and of each
 * block reaching a multiple of N. Verification requires these.
 */
export const checkpointRequired = (p: CheckpointPolicy, first: number, last: number) =>
  first === 1 || Math.floor(last / p.every) > Math.floor((first - 1) / p.every);

/**
 * Whether appending entries first..last together (recorded at `recordedAt`, the chain's previous entry at
 * `prevRecordedAt`) should sign a checkpoint at `last`. Decided from the two appends alone so the writer needs no
 * extra read: the chain's first append, one that reaches a multiple of N, and the first in a new time bucket (so
 * no entry waits longer than one bucket plus the next append for a signature covering it).
 */
export function checkpointDue(p: CheckpointPolicy, first: number, last: number, recordedAt: string, prevRecordedAt: string | null): boolean {
  if (checkpointRequired(p, first, last) || prevRecordedAt === null) return true;
  return Math.floor(Date.parse(recordedAt) / p.intervalMs) !== Math.floor(Date.parse(prevRecordedAt) / p.intervalMs);
}

// ---------------------------------------------------------------------------------------------
// Verification

/** An entry as read back from the store (hash and request_id are stored beside the hashed fields). */
export interface StoredEntry extends LedgerEntry {
  /** The seq its place in the store says it has, and the first seq of the block holding it. */
  sk_seq: number | null;
  block: number | null;
  key_id: string;
  request_id: string;
  hash: string;
}

export interface StoredCheckpoint extends CheckpointBody {
  sk_seq: number | null;
  alg: string;
  signing_key: string;
  /** base64 DER ECDSA signature. */
  signature: string;
}

/** The idempotency marker of a request: the block (its first seq) it was appended in, or is being appended in. */
export interface StoredMarker {
  request_id: string;
  key_id: string;
  block: number;
  /** When the request was claimed or its marker last moved (ISO); absent on a marker the writer did not write. */
  claimed_at?: string;
}

export interface Problem {
  key_id: string;
  seq: number;
  problem: string;
}

export interface ChainReport {
  key_id: string;
  ok: boolean;
  entries: number;
  head: { seq: number; hash: string } | null;
  checkpoints: number;
  last_checkpoint: { seq: number; time: string } | null;
  /** Entries after the last checkpoint (not yet covered by a signature). */
  unsigned_tail: number;
  /** Requests claimed but not yet in the chain, within the redelivery window (a writer or its retry is on it). */
  in_flight: number;
  /** Checkpoints due or not yet anchored, within the redelivery window (the writer or its retry is on them). */
  pending_checkpoints: number;
  problems: Problem[];
}

export interface ChainInput {
  keyId: string;
  /** Every entry item of the chain, in sort-key order. */
  entries: StoredEntry[];
  checkpoints: StoredCheckpoint[];
  /** The key's checkpoints as read from the anchor outside the table (`sk_seq`: the seq its object name says). */
  anchored: StoredCheckpoint[];
  /** Every marker of this key (and possibly others'), by request id: orphans are judged against the chain. */
  markers?: Map<string, StoredMarker | null>;
  policy: CheckpointPolicy;
  now: Date;
  /** Checks a checkpoint signature against the trusted signing key; `signing_key` names the key it claims. */
  verifySignature: (payload: Buffer, signatureBase64: string, signingKey: string) => boolean;
}

/**
 * Recomputes one chain from its items. Problems are reported in chain order (seq, then entry before
 * checkpoint); the first is the first broken link.
 */
export function verifyChain(input: ChainInput): ChainReport {
  const { keyId, entries, markers } = input;
  const problems: Problem[] = [];
  const flag = (seq: number, problem: string) => problems.push({ key_id: keyId, seq, problem });

  // Recomputed hashes by seq, for entries whose content and link are intact up to them.
  const goodHash = new Map<number, string>();
  let prevHash = GENESIS_HASH;
  let prevSeq = 0;
  let chainIntact = true;
  for (const e of entries) {
    const at = e.sk_seq ?? prevSeq + 1;
    let ok = true;
    const bad = (seq: number, problem: string) => { ok = false; flag(seq, problem); };
    if (e.sk_seq !== e.seq) bad(at, `entry stored at seq ${e.sk_seq} says it is seq ${e.seq} (moved or reordered)`);
    else if (e.seq !== prevSeq + 1) bad(prevSeq + 1, `entry ${prevSeq + 1} is missing (the next one is ${e.seq})`);
    if (ok && e.prev_hash !== prevHash) bad(at, `prev_hash does not link to entry ${prevSeq}`);
    let recomputed: string | null = null;
    try {
      recomputed = entryHash({ v: e.v, seq: e.seq, prev_hash: e.prev_hash, recorded_at: e.recorded_at, event: e.event });
    } catch (err) {
      bad(at, `entry cannot be serialized: ${(err as Error).message}`);
    }
    if (ok && recomputed !== e.hash) bad(at, 'content does not match its hash (entry modified)');
    if (ok && (e.event?.key_id !== keyId || e.key_id !== keyId)) bad(at, 'entry belongs to another key');
    if (ok && e.request_id !== e.event?.request_id) bad(at, 'request_id does not match the recorded event');
    if (ok && markers) {
      const m = markers.get(e.request_id);
      if (!m) bad(at, `no idempotency marker for request ${e.request_id} (entry not written by the ledger writer)`);
      else if (m.key_id !== keyId || m.block !== e.block) bad(at, `idempotency marker of request ${e.request_id} points to ${m.key_id} block ${m.block}`);
    }
    chainIntact &&= ok;
    if (chainIntact) goodHash.set(e.seq, e.hash);
    prevHash = e.hash;
    prevSeq = at;
  }
  const tip = entries.length ? prevSeq : 0;
  const now = input.now.getTime();
  const recent = (time: string | undefined) => time !== undefined && now - Date.parse(time) < REDELIVERY_WINDOW_MS;

  // Checkpoints with a valid signature, from the table and from the anchor; the anchor's copy is authoritative.
  const signed = (c: StoredCheckpoint) => {
    try {
      return c.alg === SIGNING_ALGORITHM && input.verifySignature(checkpointPayload(c), c.signature, c.signing_key);
    } catch {
      return false;
    }
  };
  const valid = (list: StoredCheckpoint[], where: string) => {
    const bySeq = new Map<number, StoredCheckpoint>();
    for (const c of list) {
      if (c.sk_seq !== c.seq || c.key_id !== keyId) flag(c.seq, `${where} checkpoint for seq ${c.sk_seq} of ${c.key_id} does not belong at seq ${c.seq} of this chain`);
      else if (!signed(c)) flag(c.seq, `${where} checkpoint signature is not valid for the trusted ledger signing key`);
      else bySeq.set(c.seq, c);
    }
    return bySeq;
  };
  const inTable = valid(input.checkpoints, 'table');
  const anchored = valid(input.anchored, 'anchored');
  let pending = 0;
  for (const [seq, c] of inTable) {
    const a = anchored.get(seq);
    if (a) {
      if (checkpointText(a) !== checkpointText(c)) flag(seq, 'checkpoint differs from its anchored copy (rewritten)');
    } else if (recent(c.time)) pending++;
    else flag(seq, 'checkpoint is missing from the anchor');
  }
  for (const seq of anchored.keys()) if (!inTable.has(seq)) flag(seq, 'anchored checkpoint is missing from the table (deleted)');

  const checkpoints = [...new Map([...inTable, ...anchored]).values()].sort((a, b) => a.seq - b.seq);
  for (const c of checkpoints) {
    if (c.seq > tip) flag(c.seq, `signed checkpoint at seq ${c.seq} but the chain ends at ${tip} (entries deleted)`);
    else if (goodHash.has(c.seq) && goodHash.get(c.seq) !== c.hash) flag(c.seq, 'signed checkpoint hash does not match the chain (history rewritten)');
  }

  // The checkpoints the policy always writes must exist; the head block's may still be on its way.
  const signedAt = new Set(checkpoints.map((c) => c.seq));
  entries.forEach((e, i) => {
    const next = entries[i + 1];
    if (e.block === null || e.sk_seq === null || (next && next.block === e.block)) return; // not a block's last entry
    if (!checkpointRequired(input.policy, e.block, e.sk_seq) || signedAt.has(e.sk_seq)) return;
    if (!next && recent(e.recorded_at)) pending++;
    else flag(e.sk_seq, `the checkpoint the policy requires at seq ${e.sk_seq} is missing (deleted, or never signed)`);
  });

  // Orphan markers: a marker naming the block after the head, or a block other requests won, is an append in
  // progress while its redelivery can still come; older, or further out, entries were removed.
  let inFlight = 0;
  if (markers) {
    const inChain = new Set(entries.map((e) => e.request_id));
    for (const m of markers.values()) {
      if (!m || m.key_id !== keyId || inChain.has(m.request_id)) continue;
      if (m.block > tip + 1) flag(m.block, `request ${m.request_id} was claimed at seq ${m.block} but the chain ends at ${tip} (entries deleted)`);
      else if (recent(m.claimed_at)) inFlight++;
      else flag(m.block, `request ${m.request_id} was claimed at seq ${m.block} longer ago than the redelivery window and is not in the chain (entries deleted, or its event is dead-lettered)`);
    }
  }

  problems.sort((a, b) => a.seq - b.seq);
  const last = checkpoints.at(-1);
  return {
    key_id: keyId,
    ok: problems.length === 0,
    entries: entries.length,
    head: entries.length ? { seq: tip, hash: entries[entries.length - 1].hash } : null,
    checkpoints: checkpoints.length,
    last_checkpoint: last ? { seq: last.seq, time: last.time } : null,
    unsigned_tail: Math.max(0, tip - (last?.seq ?? 0)),
    in_flight: inFlight,
    pending_checkpoints: pending,
    problems,
  };
}
