import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { config } from '../config';
import { ANCHOR_PREFIX, checkpointText, type StoredCheckpoint } from '../core/ledger';
import { keepAliveHandler, sdkClientSettings } from '../sdk';


/**
 * Signed checkpoints kept outside the ledger table, where whoever can rewrite the table cannot rewrite or delete
 * them. AWS: an S3 bucket with Object Lock in compliance mode (lib/custody.ts), objects put once (If-None-Match)
 * under `checkpoints/`; the writer may only PutObject there. Local: `${NI_DATA_DIR}/ledger-anchor/`, files
 * linked into place once (0400) and never overwritten.
 *
 * OBJECT `checkpoints/<key id>/<seq, 12 digits>.json`: the checkpoint's `checkpointText` (core/ledger.ts), the
 * same fields as its table item.
 */
export interface LedgerAnchor {
  /** Where it is, for messages. */
  readonly location: string;
  /** Anchors a checkpoint once; anchoring one that is already there is a no-op. */
  put(checkpoint: StoredCheckpoint): Promise<void>;
  /** Every anchored checkpoint (or one key's), `sk_seq` being the seq its object name says. */
  list(keyId?: string): Promise<StoredCheckpoint[]>;
}

const objectName = (c: { key_id: string; seq: number }) => `${encodeURIComponent(c.key_id)}/${String(c.seq).padStart(12, '0')}.json`;
const NAME = /^([^/]+)\/(\d{12})\.json$/;

/** A stored object back as a checkpoint; an unreadable one still yields an item that verification flags. */
function parse(name: string, text: string): StoredCheckpoint | null {
  const m = NAME.exec(name);
  if (!m) return null;
  let body: Partial<StoredCheckpoint> = {};
  try {
    body = JSON.parse(text) as StoredCheckpoint;
  } catch {
    // flagged: its signature cannot check out
  }
  return { seq: Number(m[2]), key_id: decodeURIComponent(m[1]), ...body, sk_seq: Number(m[2]) } as StoredCheckpoint;
}

export const localAnchorDir = () => config().ledger.anchorDir;

let cached: { settings: string; anchor: LedgerAnchor } | undefined;

/** The anchor this process is configured for (re-created when the configuration changes, e.g. in tests). */
export function ledgerAnchor(): LedgerAnchor {
  const { region, ledger } = config();
  const bucket = ledger.anchorBucket;
  const settings = bucket ? `s3:${bucket}` : `dir:${localAnchorDir()}`;
  if (cached?.settings !== settings) {
    cached = {
      settings,
      anchor: bucket
        ? s3Anchor(bucket, new S3Client({ region, requestHandler: keepAliveHandler(), ...sdkClientSettings('s3', undefined) }))
        : directoryAnchor(localAnchorDir()),
    };
  }
  return cached.anchor;
}

export function s3Anchor(bucket: string, client: S3Client): LedgerAnchor {
  return {
    location: `s3://${bucket}/${ANCHOR_PREFIX}`,
    async put(c) {
      try {
        await client.send(new PutObjectCommand({
          Bucket: bucket, Key: ANCHOR_PREFIX + objectName(c), Body: checkpointText(c), ContentType: 'application/json', IfNoneMatch: '*',
        }));
      } catch (err) {
        // 412: already anchored. The writer may not read the bucket; verification compares the copies.
        if (!(err instanceof S3ServiceException && err.$metadata.httpStatusCode === 412)) throw err;
      }
    },
    async list(keyId) {
      const prefix = ANCHOR_PREFIX + (keyId ? `${encodeURIComponent(keyId)}/` : '');
      const names: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        names.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      const out: StoredCheckpoint[] = [];
      for (const name of names) {
        const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: name }));
        const c = parse(name.slice(ANCHOR_PREFIX.length), await body.Body!.transformToString('utf8'));
        if (c) out.push(c);
      }
      return out;
    },
  };
}

export function directoryAnchor(dir: string): LedgerAnchor {
  return {
    location: dir,
    async put(c) {
      const file = join(dir, objectName(c));
      const keyDir = join(dir, encodeURIComponent(c.key_id));
      await mkdir(keyDir, { recursive: true, mode: 0o700 });
      // Written aside, then linked into place: link never replaces a file, and nobody reads a half-written one.
      const tmp = join(keyDir, `.${process.pid}.${randomBytes(4).toString('hex')}`);
      await writeFile(tmp, checkpointText(c), { mode: 0o400, flag: 'wx' });
      try {
        await chmod(tmp, 0o400); // whatever the umask
        await link(tmp, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        await unlink(tmp);
      }
    },
    async list(keyId) {
      const keyDirs = keyId ? [encodeURIComponent(keyId)] : await names(dir);
      const out: StoredCheckpoint[] = [];
      for (const k of keyDirs) {
        for (const f of await names(join(dir, k))) {
          if (f.startsWith('.')) continue;
          const c = parse(`${k}/${f}`, await readFile(join(dir, k, f), 'utf8'));
          if (c) out.push(c);
        }
      }
      return out;
    },
  };
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
