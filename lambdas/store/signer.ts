import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { config } from '../config';
import { SIGNING_ALGORITHM } from '../core/ledger';
import { loadOrCreateKeyFile } from './key-file';
import { keepAliveHandler, sdkClientSettings } from '../sdk';

/**
 * Signs ledger checkpoints (ECDSA P-256 over SHA-256, DER signatures) and checks them.
 * AWS (`NI_LEDGER_SIGNING_KEY_ID` set): an asymmetric KMS key; the private half never leaves KMS, and
 * verification uses its public key (GetPublicKey) with node:crypto. Local: a PEM private key file created on
 * first use (`NI_LEDGER_SIGNING_KEY_FILE`, default `${NI_DATA_DIR:-.ni-data}/ledger-signing-key.pem`, 0600).
 */
export interface LedgerSigner {
  /** Names the key in checkpoints: the KMS key id/ARN, or `local:<sha256 of the public key, 16 hex>`. */
  readonly keyRef: string;
  readonly alg: typeof SIGNING_ALGORITHM;
  sign(payload: Buffer): Promise<Buffer>;
  publicKey(): Promise<KeyObject>;
}

export const localKeyFile = () => config().ledger.signingKeyFile;

let cached: { settings: string; signer: LedgerSigner } | undefined;

/** The signer this process is configured for (re-created when the configuration changes, e.g. in tests). */
export function ledgerSigner(): LedgerSigner {
  const { ledger, endpoints } = config();
  const kmsKey = ledger.signingKeyId;
  const settings = kmsKey ? `kms:${kmsKey}:${endpoints.kms ?? ''}` : `file:${localKeyFile()}`;
  if (cached?.settings !== settings) cached = { settings, signer: kmsKey ? kmsSigner(kmsKey) : fileSigner(localKeyFile()) };
  return cached.signer;
}

/** A checker bound to the trusted key: a checkpoint naming any other key fails. */
export async function signatureChecker(signer: LedgerSigner = ledgerSigner()) {
  const key = await signer.publicKey();
  return (payload: Buffer, signatureBase64: string, signingKey: string) =>
    signingKey === signer.keyRef && verify('sha256', payload, key, Buffer.from(signatureBase64, 'base64'));
}

function kmsSigner(keyId: string): LedgerSigner {
  const { region, endpoints } = config();
  const client = new KMSClient({ region, requestHandler: keepAliveHandler(), ...sdkClientSettings('kms', endpoints.kms) });
  let publicKey: Promise<KeyObject> | undefined;
  return {
    keyRef: keyId,
    alg: SIGNING_ALGORITHM,
    async sign(payload) {
      const out = await client.send(new SignCommand({ KeyId: keyId, Message: payload, MessageType: 'RAW', SigningAlgorithm: SIGNING_ALGORITHM }));
      if (!out.Signature) throw new Error('KMS Sign returned no signature');
      return Buffer.from(out.Signature);
    },
    publicKey() {
      publicKey ??= client.send(new GetPublicKeyCommand({ KeyId: keyId })).then((out) => {
        if (!out.PublicKey) throw new Error('KMS GetPublicKey returned no key');
        return createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' });
      });
      publicKey.catch(() => { publicKey = undefined; }); // retry a failed fetch next time
      return publicKey;
    },
  };
}

function fileSigner(file: string): LedgerSigner {
  const privateKey = loadOrCreateKey(file);
  const publicKey = createPublicKey(privateKey);
  const fingerprint = createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 16);
  return {
    keyRef: `local:${fingerprint}`,
    alg: SIGNING_ALGORITHM,
    sign: async (payload) => sign('sha256', payload, privateKey),
    publicKey: async () => publicKey,
  };
}

function loadOrCreateKey(file: string): KeyObject {
  return loadOrCreateKeyFile(file, {
    parse: (pem) => createPrivateKey(pem.toString('utf8')),
    create() {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return { key: privateKey, contents: privateKey.export({ format: 'pem', type: 'pkcs8' }) };
    },
  });
}
