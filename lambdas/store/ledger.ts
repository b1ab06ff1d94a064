import { BatchGetCommand, type BatchGetCommandOutput, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, brotliDecompressSync, constants as zlib } from 'node:zlib';
import type { CustodyEvent } from '../core/custody';
import {
  canonicalJson, checkpointDue, checkpointPayload, GENESIS_HASH, newEntry, verifyChain,
  type ChainReport, type CheckpointPolicy, type LedgerEntry, type Problem, type StoredCheckpoint, type StoredEntry,
  type StoredMarker,
} from '../core/ledger';
import { config } from '../config';
import { logger } from '../observability';
import { batches, inWaves } from './batching';
import { applied, isConditionFailure } from './conditional';
import { ddb } from './ddb';
import { ledgerAnchor, type LedgerAnchor } from './ledger-anchor';
import { ledgerSigner, signatureChecker, type LedgerSigner } from './signer';
import { tableName } from './tables';

/**
 * The ledger table: one hash chain per API key (the hashing rules live in core/ledger.ts).
 *
 * ITEMS
 *   pk = chain#<keyId>    sk = block#<first seq, 12 digits>  a block of consecutive entries first..last: key_id,
 *                                                           first, last, recorded_at, request_ids, entries_br (each
 *                                                           entry's canonical JSON, the very bytes hashed, packed:
 *                                                           packEntries), hashes, checkpoint_due (whether its
 *                                                           append owes a checkpoint)
 *   pk = chain#<keyId>    sk = checkpoint#<seq, 12 digits>  a signed checkpoint: key_id, seq, hash, time, alg,
 *                                                           signing_key, signature (base64 DER)
 *   pk = request#<reqId>  sk = entry                        idempotency marker: key_id, request_id, block (the
 *                                                           first seq of the block the request is or is being put
 *                                                           in), claimed_at (when it was claimed or last moved)
 * A block holds the events one writer appended together (those of one SQS batch, and those that queued for the
 * chain while its previous append ran): a conditional put per block instead of one per event, which is most of the
 * store's work here.
 * There is no head item: a chain's head is its highest block (one Query, Limit 1, descending).
 *
 * APPEND PROTOCOL (no transactions; any number of writers, deliveries duplicated and in any order)
 *   1. Read the head (cached per process; a stale cache only costs a retry) → its last seq h.
 *   2. Claim each request: put its marker {key_id, block: h+1} if absent. If one exists, this is a redelivery (or
 *      a concurrent duplicate): go on with the marker's block.
 *   3. The requests whose marker names block h+1 are put there together as one block, if absent. That conditional
 *      put is the single commit point: two writers can never both take block h+1, so the chain cannot fork.
 *   4. A marker naming a block below h+1: read that block. It holds the request → done (a duplicate). It holds
 *      others' requests → move the marker from that block to h+1 (conditional on it still naming it), go to 3.
 *   5. After the commit, sign a checkpoint at the block's last seq if the policy says one is due (conditional
 *      put, once per seq), then anchor it outside the table (ledger-anchor.ts).
 * Invariants: blocks are immutable and contiguous (block s is only put after the block ending at s-1 is read, so
 * every block starts right after another ends); a request is only ever put in the block its marker names, and a
 * marker only moves away from a block that exists without it, so once a request is in the chain its marker never
 * moves: one entry per request.
 *
 * CRASH POINTS
 *   - after the claim or a marker move, before the block put: the request is "in flight" (verify counts it
 *     within the redelivery window, and flags it after); the redelivery (SQS receives the failed record again)
 *     finds the marker and completes the append at that block, or moves on if other requests took it meanwhile.
 *   - after the block put, before the checkpoint or its anchoring (a crash, KMS or S3 failing: the append
 *     throws): the chain is complete and verifiable, the checkpoint pending; the redelivery finds its entry
 *     (step 4), signs the checkpoint if the block owes one and it is still missing, and anchors it.
 */

const PAD = 12;
const chainPk = (keyId: string) => `chain#${keyId}`;
const markerKey = (requestId: string) => ({ pk: `request#${requestId}`, sk: 'entry' });
const BLOCK = 'block#';
const CHECKPOINT = 'checkpoint#';
const blockSk = (seq: number) => `${BLOCK}${String(seq).padStart(PAD, '0')}`;
const blockKey = (keyId: string, first: number) => ({ pk: chainPk(keyId), sk: blockSk(first) });
const checkpointSk = (seq: number) => `${CHECKPOINT}${String(seq).padStart(PAD, '0')}`;
const SK_SEQ = new RegExp(`^(?:${BLOCK}|${CHECKPOINT})(\\d{${PAD}})$`);
/** The seq a sort key names (null for a malformed one: verify reports it). */
const skSeq = (sk: string) => { const m = SK_SEQ.exec(sk); return m ? Number(m[1]) : null; };

/** Lost races on one chain before giving up (the delivery is then retried by EventBridge or SQS). */
const MAX_ATTEMPTS = 200;
const MAX_CACHED_HEADS = 10_000;
/** Per block: far below DynamoDB's 400 KB item limit (an entry is about 1 KB, at most a few). */
const MAX_BLOCK_ENTRIES = 50;
const MAX_BLOCK_BYTES = 256 * 1024;
/** Claims in flight at once: a block's worth sent together would queue ahead of other requests' hot-path writes. */
const CLAIMS_AT_ONCE = 4;


const table = () => tableName('ledger');

interface Head {
  seq: number;
  hash: string;
  recorded_at: string | null;
}
const GENESIS: Head = { seq: 0, hash: GENESIS_HASH, recorded_at: null };

/** A block as the writer holds it (stored with its entries packed). */
interface Block {
  key_id: string;
  first: number;
  last: number;
  recorded_at: string;
  request_ids: string[];
  entries: string[];
  hashes: string[];
  checkpoint_due: boolean;
}

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

/**
 * A block's entries as stored: brotli over the JSON array of their texts. A custody entry's JSON is mostly
 * repeated field names and hex, so packed it is about half the size, and a block of one entry fits in one
 * DynamoDB write unit instead of two. Blocks written before entries were packed hold them as `entries`.
 */
export const packEntries = (entries: string[]): Uint8Array =>
  brotliCompressSync(JSON.stringify(entries), { params: { [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT, [zlib.BROTLI_PARAM_QUALITY]: 9 } });

/** The entries' texts of a stored block item (whatever its form: a tampered item yields what it holds). */
export function storedEntryTexts(item: Record<string, any>): unknown[] {
  if (item.entries_br instanceof Uint8Array) {
    try {
      const texts: unknown = JSON.parse(brotliDecompressSync(item.entries_br).toString('utf8'));
      return Array.isArray(texts) ? texts : [];
    } catch {
      return []; // unreadable: verification finds its entries missing
    }
  }
  return Array.isArray(item.entries) ? item.entries : [];
}

function blockOf(item: Record<string, any>): Block {
  const { entries_br: _, ...block } = item;
  return { ...block, entries: storedEntryTexts(item).map(String) } as Block;
}

const headOf = (b: Block): Head => ({ seq: b.last, hash: b.hashes[b.hashes.length - 1], recorded_at: b.recorded_at });

async function readHead(keyId: string): Promise<Head> {
  const out = await ddb().send(new QueryCommand({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :block)',
    ExpressionAttributeValues: { ':pk': chainPk(keyId), ':block': BLOCK },
    ScanIndexForward: false,
    Limit: 1,
    ConsistentRead: true,
  }));
  const item = out.Items?.[0] as Block | undefined;
  const head = item ? headOf(item) : GENESIS;
  remember(keyId, head);
  return head;
}

async function getItem(key: { pk: string; sk: string }): Promise<Record<string, any> | undefined> {
  return (await ddb().send(new GetCommand({ TableName: table(), Key: key, ConsistentRead: true }))).Item;
}

const getMarker = async (requestId: string) => (await getItem(markerKey(requestId))) as StoredMarker | undefined;

/** The items at `keys` that exist, 100 keys per BatchGetItem (DynamoDB's limit), unprocessed keys asked again. */
async function batchGet(keys: { pk: string; sk: string }[]): Promise<Record<string, any>[]> {
  const items: Record<string, any>[] = [];
  for (const batch of batches(keys, 100)) {
    let pending: Record<string, any>[] | undefined = batch;
    while (pending?.length) {
      const out: BatchGetCommandOutput = await ddb().send(new BatchGetCommand({ RequestItems: { [table()]: { Keys: pending, ConsistentRead: true } } }));
      items.push(...(out.Responses?.[table()] ?? []));
      pending = out.UnprocessedKeys?.[table()]?.Keys;
    }
  }
  return items;
}

/** The blocks starting at `firsts` (absent ones left out), by first seq. */
async function getBlocks(keyId: string, firsts: number[]): Promise<Map<number, Block>> {
  const items = await batchGet([...new Set(firsts)].map((f) => blockKey(keyId, f)));
  return new Map(items.map((item) => [item.first as number, blockOf(item)]));
}

async function claim(requestId: string, keyId: string, block: number, now: Date): Promise<StoredMarker> {
  const marker: StoredMarker = { request_id: requestId, key_id: keyId, block, claimed_at: now.toISOString() };
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

async function moveMarker(requestId: string, from: number, to: number, now: Date): Promise<StoredMarker> {
  try {
    const out = await ddb().send(new UpdateCommand({
      TableName: table(),
      Key: markerKey(requestId),
      UpdateExpression: 'SET #block = :to, claimed_at = :now',
      ConditionExpression: '#block = :from',
      ExpressionAttributeNames: { '#block': 'block' },
      ExpressionAttributeValues: { ':from': from, ':to': to, ':now': now.toISOString() },
      ReturnValues: 'ALL_NEW',
    }));
    return out.Attributes as StoredMarker;
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    return (await getMarker(requestId))!; // another delivery of this request moved it first
  }
}

/** The block of `events` following `head`, entries hashed and linked. */
function newBlock(keyId: string, events: CustodyEvent[], head: Head, recordedAt: Date, policy: CheckpointPolicy): Block {
  const entries: string[] = [];
  const hashes: string[] = [];
  let prev = head.hash;
  events.forEach((event, i) => {
    const { hash, ...entry } = newEntry(event, head.seq + 1 + i, prev, recordedAt);
    entries.push(canonicalJson(entry));
    hashes.push(hash);
    prev = hash;
  });
  const first = head.seq + 1;
  const last = head.seq + events.length;
  const recorded_at = recordedAt.toISOString();
  return {
    key_id: keyId, first, last, recorded_at, request_ids: events.map((e) => e.request_id), entries, hashes,
    checkpoint_due: checkpointDue(policy, first, last, recorded_at, head.recorded_at),
  };
}

/** True when this put took the block's place. */
async function putBlock({ entries, ...block }: Block): Promise<boolean> {
  return applied(ddb().send(new PutCommand({
    TableName: table(), Item: { ...blockKey(block.key_id, block.first), ...block, entries_br: packEntries(entries) }, ConditionExpression: 'attribute_not_exists(pk)',
  })));
}

export interface AppendOptions {
  now?: () => Date;
  signer?: LedgerSigner;
  anchor?: LedgerAnchor;
  policy?: CheckpointPolicy;
}

export interface AppendResult {
  /** appended: this call wrote the entry; duplicate: the request was already in the chain; conflict: its
   * request id is already in another key's chain (nothing written). */
  status: 'appended' | 'duplicate' | 'conflict';
  key_id: string;
  /** The request's seq in the chain (for a conflict, the block its marker names in the other chain). */
  seq: number;
  /** Seq of the checkpoint this call signed, if any. */
  checkpoint: number | null;
}

/**
 * Appends in this process queue per chain: they would only race each other for the same block (a Lambda
 * container runs one invocation at a time; the local runtime, SQS batches and benches run many). Those that
 * queue while an append runs go in the next block together. Writers in other processes still race, and the
 * conditional writes settle it.
 */
interface Waiting {
  event: CustodyEvent;
  opts: AppendOptions | undefined;
  bytes: number;
  resolve: (r: AppendResult) => void;
  reject: (err: unknown) => void;
}
const queues = new Map<string, Waiting[]>();

/** Appends one custody event to its key's chain, exactly once per request id (see the protocol above). */
export const appendCustodyEvent = (event: CustodyEvent, opts?: AppendOptions): Promise<AppendResult> => appendCustodyEvents([event], opts)[0];

/**
 * Appends a batch of events (an SQS batch): queued together before any append starts, so each key's events go
 * in one block (within the block limits). One promise per event, in order.
 */
export function appendCustodyEvents(events: CustodyEvent[], opts?: AppendOptions): Promise<AppendResult>[] {
  const started = new Set<string>();
  const results = events.map((event) => new Promise<AppendResult>((resolve, reject) => {
    const keyId = event.key_id;
    const waiting = { event, opts, bytes: Buffer.byteLength(JSON.stringify(event)) + 512, resolve, reject };
    const queue = queues.get(keyId);
    if (queue) return void queue.push(waiting);
    queues.set(keyId, [waiting]);
    started.add(keyId);
  }));
  for (const keyId of started) void drain(keyId);
  return results;
}

/** The next block's worth of a chain's queue: same options, distinct requests, within the block limits. */
function take(queue: Waiting[]): Waiting[] {
  const batch: Waiting[] = [];
  const ids = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < queue.length && batch.length < MAX_BLOCK_ENTRIES;) {
    const w = queue[i];
    if (batch.length && (w.opts !== batch[0].opts || ids.has(w.event.request_id) || bytes + w.bytes > MAX_BLOCK_BYTES)) {
      i++;
      continue; // a repeated request waits for the next block, where it is found as a duplicate
    }
    batch.push(w);
    ids.add(w.event.request_id);
    bytes += w.bytes;
    queue.splice(i, 1);
  }
  return batch;
}

async function drain(keyId: string): Promise<void> {
  const queue = queues.get(keyId)!;
  while (queue.length) {
    const batch = take(queue);
    try {
      const results = await append(keyId, batch.map((w) => w.event), batch[0].opts ?? {});
      batch.forEach((w, i) => w.resolve(results[i]));
    } catch (err) {
      batch.forEach((w) => w.reject(err));
    }
  }
  queues.delete(keyId);
}

async function append(keyId: string, events: CustodyEvent[], opts: AppendOptions): Promise<AppendResult[]> {
  const now = opts.now ?? (() => new Date());
  const results: AppendResult[] = new Array(events.length);
  let head = heads.get(keyId) ?? await readHead(keyId);
  const markers = await inWaves(events, CLAIMS_AT_ONCE, (e) => claim(e.request_id, keyId, head.seq + 1, now()));
  let pending: number[] = [];
  markers.forEach((m, i) => {
    if (m.key_id === keyId) return void pending.push(i);
    logger.error('custody event reuses a request id already recorded for another key', { requestId: events[i].request_id, keyId, recordedKeyId: m.key_id });
    results[i] = { status: 'conflict', key_id: keyId, seq: m.block, checkpoint: null };
  });
  for (let attempt = 0; pending.length; attempt++) {
    if (attempt === MAX_ATTEMPTS) throw new Error(`ledger append for ${keyId} lost ${MAX_ATTEMPTS} races in a row; the delivery will be retried`);
    if (attempt > 0) await sleep(Math.random() * Math.min(25, 2 ** attempt)); // spreads writers racing for one chain
    const next = head.seq + 1;
    if (pending.some((i) => markers[i].block > next)) {
      head = await readHead(keyId);
      const ahead = pending.find((i) => markers[i].block > head.seq + 1);
      if (ahead !== undefined) throw new Error(`ledger chain ${keyId} ends at ${head.seq} but request ${events[ahead].request_id} holds block ${markers[ahead].block}: entries are missing`);
      continue;
    }
    // Markers naming blocks already in the chain: the request is there (a duplicate) or lost that block.
    const behind = pending.filter((i) => markers[i].block < next);
    if (behind.length) {
      const blocks = await getBlocks(keyId, behind.map((i) => markers[i].block));
      await Promise.all(behind.map(async (i) => {
        const { request_id } = events[i];
        const block = blocks.get(markers[i].block);
        if (!block) throw new Error(`ledger chain ${keyId} has no block ${markers[i].block} below its head: entries are missing`);
        const at = block.request_ids.indexOf(request_id);
        if (at < 0) {
          markers[i] = await moveMarker(request_id, block.first, next, now());
          return;
        }
        if (canonicalJson(JSON.parse(block.entries[at]).event) !== canonicalJson(events[i])) {
          logger.warn('a redelivered custody event differs from the recorded one; the first recorded is kept', { requestId: request_id, keyId, seq: block.first + at });
        }
        results[i] = { status: 'duplicate', key_id: keyId, seq: block.first + at, checkpoint: await checkpointIfDue(block, true, opts) };
      }));
      pending = pending.filter((i) => !results[i]);
    }
    const ours = pending.filter((i) => markers[i].block === next);
    if (!ours.length) continue;
    const block = newBlock(keyId, ours.map((i) => events[i]), head, now(), opts.policy ?? checkpointPolicy());
    if (!(await putBlock(block))) {
      head = await readHead(keyId); // taken: the next round sorts ours out (duplicates or moves)
      continue;
    }
    head = headOf(block);
    remember(keyId, head);
    const checkpoint = await checkpointIfDue(block, false, opts);
    ours.forEach((i, j) => { results[i] = { status: 'appended', key_id: keyId, seq: block.first + j, checkpoint }; });
    pending = pending.filter((i) => !results[i]);
  }
  return results;
}

/**
 * Signs the checkpoint a block owes, once per seq (the table's conditional put decides which signature stands),
 * and anchors the table's copy. A redelivery re-anchors an existing one (a no-op when it is there). Failures are
 * thrown: the delivery is retried and its redelivery finishes the job, as the policy requires these checkpoints.
 */
async function checkpointIfDue(block: Block, redelivery: boolean, opts: AppendOptions): Promise<number | null> {
  if (!block.checkpoint_due) return null;
  const { key_id: keyId, last } = block;
  const key = { pk: chainPk(keyId), sk: checkpointSk(last) };
  const anchor = opts.anchor ?? ledgerAnchor();
  const existing = redelivery ? await getItem(key) : undefined;
  if (existing) {
    await anchor.put(storedCheckpoint(existing));
    return null;
  }
  const signer = opts.signer ?? ledgerSigner();
  const body = { key_id: keyId, seq: last, hash: block.hashes[block.hashes.length - 1], time: (opts.now ?? (() => new Date()))().toISOString() };
  const signature = (await signer.sign(checkpointPayload(body))).toString('base64');
  const item = { ...key, ...body, alg: signer.alg, signing_key: signer.keyRef, signature };
  try {
    await ddb().send(new PutCommand({ TableName: table(), Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    await anchor.put(storedCheckpoint((await getItem(key))!)); // another delivery signed it first
    return null;
  }
  await anchor.put(storedCheckpoint(item));
  return last;
}

/** NI_LEDGER_CHECKPOINT_EVERY (entries) and NI_LEDGER_CHECKPOINT_INTERVAL_S override the defaults. */
export function checkpointPolicy(): CheckpointPolicy {
  const { checkpointEvery, checkpointIntervalMs } = config().ledger;
  return { every: checkpointEvery, intervalMs: checkpointIntervalMs };
}

// ---------------------------------------------------------------------------------------------
// Receipts

/** A checkpoint item as read back, placed by its sort key. */
const storedCheckpoint = (item: Record<string, any>): StoredCheckpoint => ({
  key_id: item.key_id, seq: item.seq, hash: item.hash, time: item.time,
  alg: item.alg, signing_key: item.signing_key, signature: item.signature, sk_seq: skSeq(String(item.sk)),
});

/**
 * A block item's entries as read back, placed by its sort key (`first` is the block's own seq from it). A block
 * tampered into nonsense still yields entries, which verification then flags.
 */
function entriesOf(item: Record<string, any>, first: number | null): StoredEntry[] {
  return storedEntryTexts(item).map((text, i) => {
    let entry: Partial<LedgerEntry> = {};
    try {
      entry = JSON.parse(String(text)) as LedgerEntry;
    } catch {
      // unreadable: its hash check fails
    }
    return {
      v: entry.v, seq: entry.seq, prev_hash: entry.prev_hash, recorded_at: entry.recorded_at, event: entry.event,
      sk_seq: first === null ? null : first + i, block: first, key_id: item.key_id, request_id: item.request_ids?.[i], hash: item.hashes?.[i],
    } as StoredEntry;
  });
}

/** Every entry of one chain in order, as stored (tests, the bench's count). */
export async function chainEntries(keyId: string): Promise<StoredEntry[]> {
  const entries: StoredEntry[] = [];
  let start: Record<string, any> | undefined;
  do {
    const page = await ddb().send(new QueryCommand({
      TableName: table(), KeyConditionExpression: 'pk = :pk AND begins_with(sk, :block)',
      ExpressionAttributeValues: { ':pk': chainPk(keyId), ':block': BLOCK }, ConsistentRead: true, ExclusiveStartKey: start,
    }));
    for (const item of page.Items ?? []) entries.push(...entriesOf(item, skSeq(String(item.sk))));
    start = page.LastEvaluatedKey;
  } while (start);
  return entries;
}

const withoutPlace = ({ sk_seq: _, ...checkpoint }: StoredCheckpoint) => checkpoint;

/**
 * A request's custody receipt: its ledger entry exactly as hashed (so `hash` can be recomputed with the
 * canonical serialization), and the latest signed checkpoint at or after it (null until one is signed).
 * Null when the request is not in the ledger (yet), or belongs to another key.
 */
export async function getReceipt(requestId: string, keyId: string): Promise<object | null> {
  const marker = await getMarker(requestId);
  if (!marker || marker.key_id !== keyId) return null;
  const item = await getItem(blockKey(keyId, marker.block));
  const at = item?.request_ids.indexOf(requestId) ?? -1;
  if (at < 0) return null; // claimed, not yet appended
  const entry = JSON.parse(String(storedEntryTexts(item!)[at])) as LedgerEntry;
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
    entry,
    hash: item!.hashes[at],
    checkpoint: latest && latest.seq >= entry.seq ? withoutPlace(storedCheckpoint(latest)) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Verification

export interface LedgerReport {
  ok: boolean;
  /** Where the checkpoints were read from besides the table. */
  anchor: string;
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
      markers.set(pk.slice('request#'.length), { request_id: pk.slice('request#'.length), key_id: item.key_id, block: item.block, claimed_at: item.claimed_at });
      continue;
    }
    if (!pk.startsWith('chain#')) continue;
    const keyId = pk.slice('chain#'.length);
    let chain = chains.get(keyId);
    if (!chain) chains.set(keyId, (chain = { entries: [], checkpoints: [] }));
    if (sk.startsWith(BLOCK)) {
      chain.entries.push(...entriesOf(item, skSeq(sk)));
    } else if (sk.startsWith(CHECKPOINT)) {
      chain.checkpoints.push(storedCheckpoint(item));
    }
  }
}

/** A key's markers: a scan (markers are keyed by request), filtered to that key. */
async function markersOfKey(keyId: string, into: Map<string, StoredMarker | null>): Promise<void> {
  let start: Record<string, any> | undefined;
  do {
    const page = await ddb().send(new ScanCommand({
      TableName: table(), ConsistentRead: true, ExclusiveStartKey: start,
      FilterExpression: 'begins_with(pk, :request) AND key_id = :key', ExpressionAttributeValues: { ':request': 'request#', ':key': keyId },
    }));
    for (const item of page.Items ?? []) into.set(item.request_id, item as StoredMarker);
    start = page.LastEvaluatedKey;
  } while (start);
}

export interface VerifyOptions {
  keyId?: string;
  /** Verifies checkpoint signatures; by default, against this process's configured signing key. */
  checker?: Awaited<ReturnType<typeof signatureChecker>>;
  anchor?: LedgerAnchor;
  policy?: CheckpointPolicy;
  now?: Date;
}

/**
 * Recomputes every chain (a consistent full scan), or one key's chain (its items, and its markers found by a
 * filtered scan, so orphans are judged either way), against the checkpoints anchored outside the table.
 */
export async function verifyLedger(opts: VerifyOptions = {}): Promise<LedgerReport> {
  // The anchor first: a checkpoint written meanwhile then shows up in the table only, which is "pending",
  // instead of in the anchor only, which is a break.
  const anchor = opts.anchor ?? ledgerAnchor();
  const anchored = new Map<string, StoredCheckpoint[]>();
  for (const c of await anchor.list(opts.keyId)) {
    if (!anchored.has(c.key_id)) anchored.set(c.key_id, []);
    anchored.get(c.key_id)!.push(c);
  }
  const chains = new Map<string, ChainItems>();
  const markers = new Map<string, StoredMarker | null>();
  // One key: its markers before its chain, so an append running meanwhile leaves an entry whose marker is
  // missing here (fetched below), never a claim that seems to lie beyond the chain.
  if (opts.keyId) await markersOfKey(opts.keyId, markers);
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
    const unseen = chains.get(opts.keyId)!.entries.map((e) => e.request_id).filter((id) => !markers.has(id));
    for (const item of await batchGet([...new Set(unseen)].map(markerKey))) markers.set(item.request_id, item as StoredMarker);
  }
  for (const keyId of [...anchored.keys(), ...[...markers.values()].map((m) => m?.key_id)]) {
    if (keyId && !chains.has(keyId)) chains.set(keyId, { entries: [], checkpoints: [] });
  }
  const checker = opts.checker ?? await signatureChecker();
  const policy = opts.policy ?? checkpointPolicy();
  const now = opts.now ?? new Date();
  const reports = [...chains.keys()].sort().map((keyId) => {
    const { entries, checkpoints } = chains.get(keyId)!;
    entries.sort((a, b) => (a.sk_seq ?? 0) - (b.sk_seq ?? 0));
    return verifyChain({
      keyId, entries, checkpoints, anchored: anchored.get(keyId) ?? [], markers, policy, now, verifySignature: checker,
    });
  });
  const first = reports.find((r) => !r.ok)?.problems[0] ?? null;
  return { ok: !first, anchor: anchor.location, chains: reports, first_problem: first };
}
