import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { config } from '../config';
import { encryptionContext, Envelope, type ByokProvider } from '../core/byok';
import { keepAliveHandler, sdkClientSettings } from '../sdk';
import { loadOrCreateKeyFile } from './key-file';

/**
 * Envelope encryption of BYOK credentials. Each secret is encrypted (AES-256-GCM) under a fresh data key; the data
 * key is wrapped by the key dedicated to BYOK under the encryption context {ni_key_id, provider}, which is also the
 * GCM additional data of the secret, so an envelope opens only for the key and provider it was sealed for.
 * AWS (`NI_BYOK_KMS_KEY_ID` set): a symmetric KMS key (GenerateDataKey to seal, Decrypt to open; the gateway's role
 * may only Decrypt, and only under such a context). Local: a 256-bit key file (`NI_BYOK_KEY_FILE`, default
 * `${NI_DATA_DIR:-.ni-data}/byok-key`, 0600) wraps the data keys the same way, as the ledger's signing key file
 * stands in for its KMS key.
 */
export interface ByokKeyring {
  /** Names the wrapping key in envelopes: the KMS key id, or `local:<sha256 of the key, 16 hex>`. */
  readonly ref: string;
  generateDataKey(context: Record<string, string>): Promise<{ plaintext: Buffer; wrapped: Buffer }>;
  unwrap(wrapped: Buffer, context: Record<string, string>): Promise<Buffer>;
}

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The context as GCM additional data: its entries sorted, so both sides build the same bytes. */
const aad = (context: Record<string, string>) => Buffer.from(JSON.stringify(Object.entries(context).sort(([a], [b]) => a.localeCompare(b))), 'utf8');

function gcmSeal(key: Buffer, plaintext: Buffer, context: Record<string, string>) {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv).setAAD(aad(context));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

function gcmOpen(key: Buffer, sealed: { iv: Buffer; ciphertext: Buffer; tag: Buffer }, context: Record<string, string>): Buffer {
  const decipher = createDecipheriv(ALGORITHM, key, sealed.iv).setAAD(aad(context));
  decipher.setAuthTag(sealed.tag);
  return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
}

let cached: { settings: string; keyring: ByokKeyring } | undefined;

/** The keyring this process is configured for (re-created when the configuration changes, e.g. in tests). */
export function byokKeyring(): ByokKeyring {
  const { byok, endpoints } = config();
  const settings = byok.kmsKeyId ? `kms:${byok.kmsKeyId}:${endpoints.kms ?? ''}` : `file:${byok.keyFile}`;
  if (cached?.settings !== settings) cached = { settings, keyring: byok.kmsKeyId ? kmsKeyring(byok.kmsKeyId) : fileKeyring(byok.keyFile) };
  return cached.keyring;
}

function kmsKeyring(keyId: string): ByokKeyring {
  const { region, endpoints } = config();
  const client = new KMSClient({ region, requestHandler: keepAliveHandler(), ...sdkClientSettings('kms', endpoints.kms) });
  return {
    ref: keyId,
    async generateDataKey(context) {
      const out = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
      if (!out.Plaintext || !out.CiphertextBlob) throw new Error('KMS GenerateDataKey returned no key');
      return { plaintext: Buffer.from(out.Plaintext), wrapped: Buffer.from(out.CiphertextBlob) };
    },
    async unwrap(wrapped, context) {
      const out = await client.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: wrapped, EncryptionContext: context }));
      if (!out.Plaintext) throw new Error('KMS Decrypt returned no key');
      return Buffer.from(out.Plaintext);
    },
  };
}

function fileKeyring(file: string): ByokKeyring {
  const key = loadOrCreateKeyFile(file, {
    parse(contents) {
      if (contents.length !== 32) throw new Error(`${file} is not a 256-bit BYOK key`);
      return contents;
    },
    create() {
      const created = randomBytes(32);
      return { key: created, contents: created };
    },
  });
  return {
    ref: `local:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`,
    async generateDataKey(context) {
      const plaintext = randomBytes(32);
      const { iv, ciphertext, tag } = gcmSeal(key, plaintext, context);
      return { plaintext, wrapped: Buffer.concat([iv, tag, ciphertext]) };
    },
    async unwrap(wrapped, context) {
      return gcmOpen(key, { iv: wrapped.subarray(0, IV_BYTES), tag: wrapped.subarray(IV_BYTES, IV_BYTES + TAG_BYTES), ciphertext: wrapped.subarray(IV_BYTES + TAG_BYTES) }, context);
    },
  };
}

/** Seals a customer's secret for one key and provider: only the envelope is ever stored. */
export async function sealSecret(keyId: string, provider: ByokProvider, secret: string, keyring: ByokKeyring = byokKeyring()): Promise<Envelope> {
  const context = encryptionContext(keyId, provider);
  const { plaintext, wrapped } = await keyring.generateDataKey(context);
  try {
    const { iv, ciphertext, tag } = gcmSeal(plaintext, Buffer.from(secret, 'utf8'), context);
    const b64 = (b: Buffer) => b.toString('base64');
    return { kek: keyring.ref, wrapped_key: b64(wrapped), iv: b64(iv), ciphertext: b64(ciphertext), tag: b64(tag) };
  } finally {
    plaintext.fill(0);
  }
}

/** Opens an envelope sealed for this key and provider; throws if it was sealed for another, or under another key. */
export async function openSecret(keyId: string, provider: ByokProvider, envelope: Envelope, keyring: ByokKeyring = byokKeyring()): Promise<string> {
  if (envelope.kek !== keyring.ref) throw new Error(`this BYOK credential was sealed under ${envelope.kek}, not the configured key ${keyring.ref}`);
  const context = encryptionContext(keyId, provider);
  const b = (s: string) => Buffer.from(s, 'base64');
  const dataKey = await keyring.unwrap(b(envelope.wrapped_key), context);
  try {
    return gcmOpen(dataKey, { iv: b(envelope.iv), ciphertext: b(envelope.ciphertext), tag: b(envelope.tag) }, context).toString('utf8');
  } finally {
    dataKey.fill(0);
  }
}
