import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendCustodyEvent, resetLedgerCache, verifyLedger } from '../../lambdas/store/ledger';
import { ledgerSigner } from '../../lambdas/store/signer';
import { custodyEvent } from '../support/custody';
import { useEmbeddedDynamo } from '../support/dynamo';
import { reloadConfig } from '../../lambdas/config';

/**
 * The AWS signer path through the real @aws-sdk/client-kms: a stand-in speaking KMS's JSON protocol for Sign
 * and GetPublicKey of one ECC_NIST_P256 key (RAW messages are hashed with SHA-256 and signed, as KMS does).
 */
const KEY_ID = 'arn:aws:kms:ca-central-1:000000000000:key/11111111-2222-3333-4444-555555555555';
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const calls: string[] = [];

const kms = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c)).on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const target = String(req.headers['x-amz-target']);
    calls.push(target);
    const reply = (status: number, payload: object) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(payload));
    };
    if (body.KeyId !== KEY_ID) return reply(400, { __type: 'NotFoundException', message: 'no such key' });
    if (target === 'TrentService.Sign' && body.MessageType === 'RAW' && body.SigningAlgorithm === 'ECDSA_SHA_256') {
      const signature = sign('sha256', Buffer.from(body.Message, 'base64'), privateKey);
      return reply(200, { KeyId: KEY_ID, Signature: signature.toString('base64'), SigningAlgorithm: 'ECDSA_SHA_256' });
    }
    if (target === 'TrentService.GetPublicKey') {
      return reply(200, {
        KeyId: KEY_ID, KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ECDSA_SHA_256'],
        PublicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      });
    }
    reply(400, { __type: 'UnsupportedOperationException', message: target });
  });
});

useEmbeddedDynamo();

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ni-ledger-kms-'));
  process.env.NI_DATA_DIR = dir;
  reloadConfig();
  await new Promise<void>((r) => kms.listen(0, '127.0.0.1', r));
  process.env.NI_KMS_ENDPOINT = `http://127.0.0.1:${(kms.address() as AddressInfo).port}`;
  process.env.NI_LEDGER_SIGNING_KEY_ID = KEY_ID;
  process.env.NI_LEDGER_CHECKPOINT_EVERY = '3';
  reloadConfig();
  resetLedgerCache();
});

afterAll(async () => {
  delete process.env.NI_LEDGER_SIGNING_KEY_ID;
  delete process.env.NI_KMS_ENDPOINT;
  reloadConfig();
  await new Promise((r) => kms.close(r));
  rmSync(dir, { recursive: true, force: true });
});

it('signs checkpoints with the KMS key and verifies them with its public key', async () => {
  expect(ledgerSigner().keyRef).toBe(KEY_ID);
  for (let i = 0; i < 7; i++) await appendCustodyEvent(custodyEvent({ key_id: 'key_kms' }));
  const report = await verifyLedger({ keyId: 'key_kms' });
  expect(report.ok).toBe(true);
  expect(report.chains[0]).toMatchObject({ checkpoints: 3, last_checkpoint: { seq: 6 } });
  expect(calls.filter((c) => c === 'TrentService.Sign')).toHaveLength(3);
  expect(calls).toContain('TrentService.GetPublicKey');
});

it('rejects checkpoints when the trusted key is another one', async () => {
  const { publicKey: other } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const wrongKey = (payload: Buffer, sig: string, ref: string) => ref === KEY_ID && verify('sha256', payload, other, Buffer.from(sig, 'base64'));
  const report = await verifyLedger({ keyId: 'key_kms', checker: wrongKey });
  expect(report.first_problem).toMatchObject({ seq: 1, problem: expect.stringContaining('signature is not valid') });
});
