import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * A local key file standing in for a KMS key (ledger signing, BYOK envelopes): read if it exists, else created
 * once (0600) from `create()`. Written aside then linked into place: link fails if the file exists, so two
 * processes starting at once agree on one key, and nobody ever reads a half-written file.
 */
export function loadOrCreateKeyFile<K>(file: string, key: { parse(contents: Buffer): K; create(): { key: K; contents: string | Buffer } }): K {
  try {
    return key.parse(readFileSync(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(file), { recursive: true });
  const created = key.create();
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, created.contents, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, file);
    return created.key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return key.parse(readFileSync(file));
  } finally {
    unlinkSync(tmp);
  }
}
