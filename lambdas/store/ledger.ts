import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type BatchGetCommandOutput, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CustodyEvent } from '../core/custody';
import {
  canonicalJson, checkpointDue, checkpointPayload, DEFAULT_CHECKPOINT_POLICY, GENESIS_HASH, newEntry, verifyChain,
  type ChainReport, type CheckpointPolicy, type LedgerEntry, type Problem, type StoredCheckpoint, type StoredEntry,
  type StoredMarker,
} from '../core/ledger';
import { logger } from '../observability';
import { ddb } from './ddb';
import { ledgerSigner, signatureChecker, type LedgerSigner } from './signer';
import { tableName } from './tables';

/**
 * The ledger table: one hash chain per API key (the hashing rules live in core/ledger.ts).
 *
 * ITEMS
 *   pk = chain#<keyId>    sk = entry#<seq, 12 digits>       an entry: v, seq, prev_hash, recorded_at, event (map),
 *                                                           hash, plus key_id and request_id for reading
 *   pk = chain#<keyId>    sk = checkpoint#<seq, 12 digits>  a signed checkpoint: key_id, seq, hash, time, alg,
 *                                                           signing_key, signature (base64 DER)
 *   pk = request#<reqId>  sk = entry                        idempotency marker: key_id, request_id, seq (the
 *                                                           slot the request holds or is being appended to)
 * There is no separate head item: a chain's head is its highest entry (one Query, Limit 1, descending), so
 * "entry written but head not advanced" cannot happen, and an append costs one write fewer.
 *
 * APPEND PROTOCOL (no transactions; any number of writers, deliveries duplicated and in any order)
 *   1. Read the head (cached per process; a stale cache only costs a retry) → seq h.
 *   2. Claim the request: put the marker {key_id, seq: h+1} if absent. If it exists, this is a redelivery (or a
 *      concurrent duplicate): continue with the marker's seq.
 *   3. With s = marker.seq: if slot s is the next one (head = s-1), put entry s (prev_hash = hash of entry s-1)
 *      if absent. The conditional put on the slot is the single commit point: two writers can never both
 *      take slot s, so the chain cannot fork.
 *   4. Slot s already taken: read it. Ours → done (a duplicate delivery). Another request's → re-read the head
 *      and move the marker from s to head+1 (conditional on it still being s), then go to 3.
 *   5. After the commit, sign a checkpoint if the policy says one is due (conditional put, once per seq).
 * Invariants: entries are immutable and contiguous (entry s is only put after entry s-1 is read); a request's
 * entry is only ever put at its marker's current seq, and the marker only moves away from a slot that holds
 * another request's entry, so once a request's entry exists its marker never moves: one entry per request.
 *
 * CRASH POINTS
 *   - after the marker claim or a marker move, before the entry put: the request is "in flight" (verify counts
 *     it, it is not a break); the redelivery (EventBridge/SQS retry the failed invocation) finds the marker and
 *     completes the append at the slot, or moves on if another request took that slot meanwhile.
 *   - after the entry put, before the checkpoint: the chain is complete and verifiable; the redelivery finds its
 *     entry (step 4) and signs the checkpoint if due and still missing.
 *   - a failed signature (KMS down) is logged and not retried: the next due checkpoint covers the same entries.
 */

const PAD = 12;
const chainPk = (keyId: string) => `chain#${keyId}`;
const markerKey = (requestId: string) => ({ pk: `request#${requestId}`, sk: 'entry' });
const ENTRY = 'entry#';
const CHECKPOINT = 'checkpoint#';
const entrySk = (seq: number) => `${ENTRY}${String(seq).padStart(PAD, '0')}`;
const checkpointSk = (seq: number) => `${CHECKPOINT}${String(seq).padStart(PAD, '0')}`;
const SK_SEQ = new RegExp(`^(?:${ENTRY}|${CHECKPOINT})(\\d{${PAD}})$`);
/** The seq a sort key names (null for a malformed one: verify reports it). */
const skSeq = (sk: string) => { const m = SK_SEQ.exec(sk); return m ? Number(m[1]) : null; };

/** Lost races on one chain before giving up (the delivery is then retried by EventBridge or SQS). */
const MAX_ATTEMPTS = 200;
const MAX_CACHED_HEADS = 10_000;

const table = () => tableName('ledger');
const isConditionFailure = (err: unknown) => err instanceof ConditionalCheckFailedException;

interface Head {
  seq: number;
  hash: string;
  recorded_at: string | null;
}
const GENESIS: Head = { seq: 0, hash: GENESIS_HASH, recorded_at: null };

/** Last head seen per chain in this process: saves the head read on a warm writer. */
const heads = new Map<string, Head>();
function remember(keyId: string, head: Head): void {
  const known = heads.get(keyId);
  if (known && known.seq >= head.seq) return;
  heads.delete(keyId);
  if (heads.size >= MAX_CACHED_HEADS) heads.delete(heads.keys().next().value!);
  heads.set(keyId, head);
}

/** Forget cached chain heads (tests that tamper with or recreate the table). */
export const resetLedgerCache = () => heads.clear();

async function readHead(keyId: string): Promise<Head> {
  const out = await ddb().send(new QueryCommand({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :entry)',
    ExpressionAttributeValues: { ':pk': chainPk(keyId), ':entry': ENTRY },
    ScanIndexForward: false,
    Limit: 1,
    ConsistentRead: true,
  }));
  const item = out.Items?.[0];
  const head = item ? { seq: item.seq as number, hash: item.hash as string, recorded_at: item.recorded_at as string } : GENESIS;
  remember(keyId, head);
  return head;
}

/** Entries from `seq` on, up to a page; `complete` when the page reached the head. */
async function readFrom(keyId: string, seq: number): Promise<{ items: Record<string, any>[]; complete: boolean }> {
  const out = await ddb().send(new QueryCommand({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
    ExpressionAttributeValues: { ':pk': chainPk(keyId), ':from': entrySk(seq), ':to': entrySk(10 ** PAD - 1) },
    Limit: 16,
    ConsistentRead: true,
  }));
  return { items: out.Items ?? [], complete: !out.LastEvaluatedKey };
}

async function getItem(key: { pk: string; sk: string }): Promise<Record<string, any> | undefined> {
  return (await ddb().send(new GetCommand({ TableName: table(), Key: key, ConsistentRead: true }))).Item;
}

const getEntry = (keyId: string, seq: number) => getItem({ pk: chainPk(keyId), sk: entrySk(seq) });
const getMarker = async (requestId: string) => (await getItem(markerKey(requestId))) as StoredMarker | undefined;

async function claim(requestId: string, keyId: string, seq: number): Promise<StoredMarker> {
  const marker: StoredMarker = { request_id: requestId, key_id: keyId, seq };
  try {
    await ddb().send(new PutCommand({
      TableName: table(), Item: { ...markerKey(requestId), ...marker }, ConditionExpression: 'attribute_not_exists(pk)',
    }));
    return marker;
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    return (await getMarker(requestId))!;
  }
}

async function moveMarker(requestId: string, from: number, to: number): Promise<StoredMarker> {
  try {
    const out = await ddb().send(new UpdateCommand({
      TableName: table(),
      Key: markerKey(requestId),
      UpdateExpression: 'SET seq = :to',
      ConditionExpression: 'seq = :from',
      ExpressionAttributeValues: { ':from': from, ':to': to },
      ReturnValues: 'ALL_NEW',
    }));
    return out.Attributes as StoredMarker;
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    return (await getMarker(requestId))!; // another delivery of this request moved it first
  }
}

/** True when this put took the slot. */
async function putEntry(keyId: string, entry: LedgerEntry & { hash: string }): Promise<boolean> {
  try {
    await ddb().send(new PutCommand({
      TableName: table(),
      Item: { pk: chainPk(keyId), sk: entrySk(entry.seq), key_id: keyId, request_id: entry.event.request_id, ...entry },
      ConditionExpression: 'attribute_not_exists(pk)',
    }));
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

export interface AppendOptions {
  now?: () => Date;
  signer?: LedgerSigner;
  policy?: CheckpointPolicy;
}

export interface AppendResult {
  /** appended: this call wrote the entry; duplicate: the request was already in the chain; conflict: its
   * request id is already in another key's chain (nothing written). */
  status: 'appended' | 'duplicate' | 'conflict';
  key_id: string;
  seq: number;
  /** Seq of the checkpoint this call signed, if any. */
  checkpoint: number | null;
}

/**
 * Appends in this process queue per chain: they would only race each other for the same slot (a Lambda
 * container runs one invocation at a time; the local runtime, SQS batches and benches run many). Writers in
 * other processes still race, and the conditional writes settle it.
 */
const queues = new Map<string, Promise<unknown>>();
function serialized<T>(keyId: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(keyId) ?? Promise.resolve()).then(fn);
  const tail = run.catch(() => undefined);
  queues.set(keyId, tail);
  void tail.then(() => { if (queues.get(keyId) === tail) queues.delete(keyId); });
  return run;
}

/** Appends one custody event to its key's chain, exactly once per request id (see the protocol above). */
export function appendCustodyEvent(event: CustodyEvent, opts: AppendOptions = {}): Promise<AppendResult> {
  return serialized(event.key_id, () => append(event, opts));
}

async function append(event: CustodyEvent, opts: AppendOptions): Promise<AppendResult> {
  const keyId = event.key_id;
  const requestId = event.request_id;
  const now = opts.now ?? (() => new Date());
  let head = heads.get(keyId) ?? await readHead(keyId);
  let marker = await claim(requestId, keyId, head.seq + 1);
  if (marker.key_id !== keyId) {
    logger.error('custody event reuses a request id already recorded for another key', { requestId, keyId, recordedKeyId: marker.key_id });
    return { status: 'conflict', key_id: keyId, seq: marker.seq, checkpoint: null };
  }
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const s = marker.seq;
    if (s > head.seq + 1) {
      head = await readHead(keyId);
      if (s > head.seq + 1) throw new Error(`ledger chain ${keyId} ends at ${head.seq} but request ${requestId} holds slot ${s}: entries are missing`);
    }
    if (s === head.seq + 1) {
      const entry = newEntry(event, s, head.hash, now());
      if (await putEntry(keyId, entry)) {
        const prev = head;
        remember(keyId, { seq: s, hash: entry.hash, recorded_at: entry.recorded_at });
        const checkpoint = await checkpointIfDue(keyId, entry, prev.recorded_at, false, opts);
        return { status: 'appended', key_id: keyId, seq: s, checkpoint };
      }
    }
    // Slot s is taken (or was just lost): one read returns entry s-1 (for a checkpoint), s, and up to the head.
    if (attempt > 0) await sleep(Math.random() * Math.min(25, 2 ** attempt)); // spreads writers racing for one chain
    const { items, complete } = await readFrom(keyId, Math.max(1, s - 1));
    const taken = items.find((i) => i.seq === s);
    if (!taken) throw new Error(`ledger chain ${keyId} has no entry ${s} below its head: entries are missing`);
    if (taken.request_id === requestId) {
      if (canonicalJson(taken.event) !== canonicalJson(event)) {
        logger.warn('a redelivered custody event differs from the recorded one; the first recorded is kept', { requestId, keyId, seq: s });
      }
      const prev = items.find((i) => i.seq === s - 1)?.recorded_at ?? null;
      const checkpoint = await checkpointIfDue(keyId, taken as LedgerEntry & { hash: string }, prev, true, opts);
      return { status: 'duplicate', key_id: keyId, seq: s, checkpoint };
    }
    // Another request holds slot s: move to the slot after the head.
    const last = items[items.length - 1];
    head = complete ? { seq: last.seq, hash: last.hash, recorded_at: last.recorded_at } : await readHead(keyId);
    remember(keyId, head);
    marker = await moveMarker(requestId, s, head.seq + 1);
  }
  throw new Error(`ledger append for ${keyId} lost ${MAX_ATTEMPTS} races in a row; the delivery will be retried`);
}

async function checkpointIfDue(
  keyId: string, entry: LedgerEntry & { hash: string }, prevRecordedAt: string | null, redelivery: boolean, opts: AppendOptions,
): Promise<number | null> {
  const policy = opts.policy ?? checkpointPolicy();
  if (!checkpointDue(policy, entry.seq, entry.recorded_at, prevRecordedAt)) return null;
  const key = { pk: chainPk(keyId), sk: checkpointSk(entry.seq) };
  try {
    if (redelivery && await getItem(key)) return null;
    const signer = opts.signer ?? ledgerSigner();
    const body = { key_id: keyId, seq: entry.seq, hash: entry.hash, time: (opts.now ?? (() => new Date()))().toISOString() };
    const signature = (await signer.sign(checkpointPayload(body))).toString('base64');
    await ddb().send(new PutCommand({
      TableName: table(),
      Item: { ...key, ...body, alg: signer.alg, signing_key: signer.keyRef, signature },
      ConditionExpression: 'attribute_not_exists(pk)',
    }));
    return entry.seq;
  } catch (err) {
    if (isConditionFailure(err)) return null;
    // The entry is committed; the next due checkpoint covers it. Not thrown: a retry would not help sooner.
    logger.error('ledger checkpoint failed', { keyId, seq: entry.seq, error: (err as Error).name });
    return null;
  }
}

/** NI_LEDGER_CHECKPOINT_EVERY (entries) and NI_LEDGER_CHECKPOINT_INTERVAL_S override the defaults. */
export function checkpointPolicy(): CheckpointPolicy {
  const every = Number(process.env.NI_LEDGER_CHECKPOINT_EVERY);
  const interval = Number(process.env.NI_LEDGER_CHECKPOINT_INTERVAL_S);
  return {
    every: Number.isInteger(every) && every > 0 ? every : DEFAULT_CHECKPOINT_POLICY.every,
    intervalMs: Number.isFinite(interval) && interval > 0 ? interval * 1000 : DEFAULT_CHECKPOINT_POLICY.intervalMs,
  };
}

// ---------------------------------------------------------------------------------------------
// Receipts

const entryOf = (item: Record<string, any>): LedgerEntry => ({
  v: item.v, seq: item.seq, prev_hash: item.prev_hash, recorded_at: item.recorded_at, event: item.event,
});
const checkpointOf = (item: Record<string, any>) => ({
  seq: item.seq as number, hash: item.hash as string, time: item.time as string,
  alg: item.alg as string, signing_key: item.signing_key as string, signature: item.signature as string,
});

/**
 * A request's custody receipt: its ledger entry exactly as hashed (so `hash` can be recomputed with the
 * canonical serialization), and the latest signed checkpoint at or after it (null until one is signed).
 * Null when the request is not in the ledger (yet), or belongs to another key.
 */
export async function getReceipt(requestId: string, keyId: string): Promise<object | null> {
  const marker = await getMarker(requestId);
  if (!marker || marker.key_id !== keyId) return null;
  const item = await getEntry(keyId, marker.seq);
  if (!item || item.request_id !== requestId) return null; // claimed, not yet appended
  const latest = (await ddb().send(new QueryCommand({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :cp)',
    ExpressionAttributeValues: { ':pk': chainPk(keyId), ':cp': CHECKPOINT },
    ScanIndexForward: false,
    Limit: 1,
  }))).Items?.[0];
  return {
    object: 'custody.receipt',
    request_id: requestId,
    key_id: keyId,
    entry: entryOf(item),
    hash: item.hash,
    checkpoint: latest && latest.seq >= marker.seq ? { key_id: keyId, ...checkpointOf(latest) } : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Verification

export interface LedgerReport {
  ok: boolean;
  chains: ChainReport[];
  /** The first broken link (chains in key order), or null. */
  first_problem: Problem | null;
}

interface ChainItems {
  entries: StoredEntry[];
  checkpoints: StoredCheckpoint[];
}

function collect(items: Record<string, any>[], chains: Map<string, ChainItems>, markers: Map<string, StoredMarker | null>): void {
  for (const item of items) {
    const pk = String(item.pk);
    const sk = String(item.sk);
    if (pk.startsWith('request#')) {
      markers.set(pk.slice('request#'.length), { request_id: pk.slice('request#'.length), key_id: item.key_id, seq: item.seq });
      continue;
    }
    if (!pk.startsWith('chain#')) continue;
    const keyId = pk.slice('chain#'.length);
    let chain = chains.get(keyId);
    if (!chain) chains.set(keyId, (chain = { entries: [], checkpoints: [] }));
    if (sk.startsWith(ENTRY)) {
      chain.entries.push({ ...entryOf(item), sk_seq: skSeq(sk), key_id: item.key_id, request_id: item.request_id, hash: item.hash });
    } else if (sk.startsWith(CHECKPOINT)) {
      chain.checkpoints.push({
        ...checkpointOf(item), key_id: item.key_id, sk_seq: skSeq(sk),
      });
    }
  }
}

async function markersFor(requestIds: string[], into: Map<string, StoredMarker | null>): Promise<void> {
  for (let i = 0; i < requestIds.length; i += 100) {
    let keys: Record<string, any>[] | undefined = requestIds.slice(i, i + 100).map(markerKey);
    while (keys?.length) {
      const out: BatchGetCommandOutput = await ddb().send(new BatchGetCommand({ RequestItems: { [table()]: { Keys: keys, ConsistentRead: true } } }));
      for (const item of out.Responses?.[table()] ?? []) into.set(item.request_id, { request_id: item.request_id, key_id: item.key_id, seq: item.seq });
      keys = out.UnprocessedKeys?.[table()]?.Keys;
    }
  }
}

/**
 * Recomputes every chain (a consistent full scan, which also finds orphaned markers), or one key's chain.
 * `checker` verifies checkpoint signatures; by default, against this process's configured signing key.
 */
export async function verifyLedger(opts: { keyId?: string; checker?: Awaited<ReturnType<typeof signatureChecker>> } = {}): Promise<LedgerReport> {
  const chains = new Map<string, ChainItems>();
  const markers = new Map<string, StoredMarker | null>();
  let start: Record<string, any> | undefined;
  do {
    const page = opts.keyId
      ? await ddb().send(new QueryCommand({
        TableName: table(), KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': chainPk(opts.keyId) },
        ConsistentRead: true, ExclusiveStartKey: start,
      }))
      : await ddb().send(new ScanCommand({ TableName: table(), ConsistentRead: true, ExclusiveStartKey: start }));
    collect(page.Items ?? [], chains, markers);
    start = page.LastEvaluatedKey;
  } while (start);
  if (opts.keyId) {
    if (!chains.has(opts.keyId)) chains.set(opts.keyId, { entries: [], checkpoints: [] });
    await markersFor([...new Set(chains.get(opts.keyId)!.entries.map((e) => e.request_id))], markers);
  }
  for (const m of markers.values()) if (m && !chains.has(m.key_id)) chains.set(m.key_id, { entries: [], checkpoints: [] });
  const checker = opts.checker ?? await signatureChecker();
  const reports = [...chains.keys()].sort().map((keyId) => {
    const { entries, checkpoints } = chains.get(keyId)!;
    entries.sort((a, b) => (a.sk_seq ?? 0) - (b.sk_seq ?? 0));
    return verifyChain({
      keyId, entries, checkpoints, markers, markersComplete: !opts.keyId, verifySignature: checker,
    });
  });
  const first = reports.find((r) => !r.ok)?.problems[0] ?? null;
  return { ok: !first, chains: reports, first_problem: first };
}
