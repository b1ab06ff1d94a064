import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { reloadConfig } from '../../lambdas/config';
import { useSdkClientFactory } from '../../lambdas/sdk';
import { createCustomerCredentials } from '../../lambdas/store/byok-credentials';
import { openSecret, sealSecret } from '../../lambdas/store/byok-keyring';
import { localClientSettings } from '../../local/loopback';

/**
 * The AWS path of BYOK envelopes through the real @aws-sdk/client-kms: a stand-in speaking KMS's JSON protocol for
 * GenerateDataKey and Decrypt of one symmetric key, binding each wrapped data key to its encryption context as KMS
 * does (a Decrypt under any other context fails with InvalidCiphertextException).
 */
const KEY_ID = '11111111-2222-3333-4444-555555555555';
const master = randomBytes(32);
const calls: { target: string; context: Record<string, string> }[] = [];

const contextBytes = (c: Record<string, string> = {}) => Buffer.from(JSON.stringify(Object.entries(c).sort(([a], [b]) => a.localeCompare(b))));

const kms = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c)).on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const target = String(req.headers['x-amz-target']);
    calls.push({ target, context: body.EncryptionContext ?? {} });
    const reply = (status: number, payload: object) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(payload));
    };
    if (body.KeyId !== KEY_ID) return reply(400, { __type: 'NotFoundException', message: 'no such key' });
    if (target === 'TrentService.GenerateDataKey' && body.KeySpec === 'AES_256') {
      const plaintext = randomBytes(32);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', master, iv).setAAD(contextBytes(body.EncryptionContext));
      const blob = Buffer.concat([iv, Buffer.concat([cipher.update(plaintext), cipher.final()]), cipher.getAuthTag()]);
      return reply(200, { KeyId: KEY_ID, Plaintext: plaintext.toString('base64'), CiphertextBlob: blob.toString('base64') });
    }
    if (target === 'TrentService.Decrypt') {
      const blob = Buffer.from(body.CiphertextBlob, 'base64');
      try {
        const decipher = createDecipheriv('aes-256-gcm', master, blob.subarray(0, 12)).setAAD(contextBytes(body.EncryptionContext));
        decipher.setAuthTag(blob.subarray(-16));
        const plaintext = Buffer.concat([decipher.update(blob.subarray(12, -16)), decipher.final()]);
        return reply(200, { KeyId: KEY_ID, Plaintext: plaintext.toString('base64') });
      } catch {
        return reply(400, { __type: 'InvalidCiphertextException', message: '' });
      }
    }
    reply(400, { __type: 'UnsupportedOperationException', message: target });
  });
});

beforeAll(async () => {
  useSdkClientFactory(localClientSettings); // loopback endpoints take unsigned calls
  await new Promise<void>((r) => kms.listen(0, '127.0.0.1', r));
  process.env.NI_KMS_ENDPOINT = `http://127.0.0.1:${(kms.address() as AddressInfo).port}`;
  process.env.NI_BYOK_KMS_KEY_ID = KEY_ID;
  reloadConfig();
});

afterAll(async () => {
  delete process.env.NI_BYOK_KMS_KEY_ID;
  delete process.env.NI_KMS_ENDPOINT;
  reloadConfig();
  await new Promise((r) => kms.close(r));
});

it('seals under a data key KMS wraps with the {ni_key_id, provider} context, and opens only under that context', async () => {
  const secret = `sk-ant-${randomBytes(20).toString('hex')}`;
  const envelope = await sealSecret('key_abc', 'anthropic', secret);
  expect(envelope.kek).toBe(KEY_ID);
  expect(JSON.stringify(envelope)).not.toContain(secret.slice(0, -4));
  expect(calls).toEqual([{ target: 'TrentService.GenerateDataKey', context: { ni_key_id: 'key_abc', provider: 'anthropic' } }]);

  await expect(openSecret('key_abc', 'anthropic', envelope)).resolves.toBe(secret);
  expect(calls.at(-1)).toEqual({ target: 'TrentService.Decrypt', context: { ni_key_id: 'key_abc', provider: 'anthropic' } });
  // Another key's or provider's context: KMS itself refuses to unwrap the data key.
  await expect(openSecret('key_other', 'anthropic', envelope)).rejects.toMatchObject({ name: 'InvalidCiphertextException' });
  await expect(openSecret('key_abc', 'openai', envelope)).rejects.toMatchObject({ name: 'InvalidCiphertextException' });
  // An envelope sealed under another key (the local file's) is refused before any call.
  const before = calls.length;
  await expect(openSecret('key_abc', 'anthropic', { ...envelope, kek: 'local:0123456789abcdef' })).rejects.toThrow(/sealed under local:/);
  expect(calls.length).toBe(before);
});

it('the gateway opens a credential once per key cache TTL (its clock injected), and a rotated one at once', async () => {
  let clock = 0;
  const ttlMs = 5_000;
  const credentials = createCustomerCredentials({ ttlMs, now: () => clock });
  const first = `sk-${randomBytes(20).toString('hex')}`;
  const sealed = { envelope: await sealSecret('key_abc', 'openai', first), fingerprint: 'sha256:0000000000000000', allow_fallback: false };
  const decrypts = () => calls.filter((c) => c.target === 'TrentService.Decrypt').length;
  const before = decrypts();
  await expect(credentials.open('key_abc', 'openai', sealed)).resolves.toBe(first);
  clock += ttlMs - 1;
  await expect(credentials.open('key_abc', 'openai', sealed)).resolves.toBe(first);
  expect(decrypts() - before).toBe(1);
  clock += 1; // the secret is kept no longer than a key record is trusted
  await expect(credentials.open('key_abc', 'openai', sealed)).resolves.toBe(first);
  expect(decrypts() - before).toBe(2);
  // A rotation is a new envelope: opened at its first use, whatever the cache holds.
  const second = `sk-${randomBytes(20).toString('hex')}`;
  const rotated = { ...sealed, envelope: await sealSecret('key_abc', 'openai', second) };
  await expect(credentials.open('key_abc', 'openai', rotated)).resolves.toBe(second);
  expect(decrypts() - before).toBe(3);
});
