import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readFileSync } from 'node:fs';
import { config } from './config';
import { keepAliveHandler, sdkClientSettings } from './sdk';

/**
 * Provider credentials. In AWS, one Secrets Manager secret per provider credential: the stack passes their ARNs
 * (not the values) in NI_PROVIDER_SECRET_ARNS, and the gateway's role may read only those. A secret is read once
 * per execution environment and cached. Elsewhere (the local runtime, a container with mounted secrets),
 * NI_PROVIDER_SECRETS_FILE names a JSON file `{provider: value}` (mode 0600). Values never reach logs or errors.
 */
export interface SecretSource {
  /** The credential for `provider`, or undefined when none is configured. */
  get(provider: string): Promise<string | undefined>;
  /**
   * Whether a credential for `provider` is configured (a secret ARN, or an entry of the secrets file), without
   * reading a secret: a provider without one is not served (its value is checked when it is used).
   */
  has(provider: string): boolean;
}

/**
 * Starts reading every secret of NI_PROVIDER_SECRET_ARNS, so that a function's init (which Lambda runs on a full
 * vCPU, before the first request) does it rather than the first request needing each. A failed read is not kept:
 * the request that needs the secret reads it again.
 */
export function prefetchSecrets(): void {
  for (const provider of Object.keys(config().providerSecretArns)) secrets.get(provider).catch(() => undefined);
}

let client: SecretsManagerClient | undefined;
const cache = new Map<string, Promise<string | undefined>>();

async function fromSecretsManager(arn: string): Promise<string> {
  client ??= new SecretsManagerClient({ region: config().region, requestHandler: keepAliveHandler(), ...sdkClientSettings('secretsmanager', undefined) });
  const out = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new Error('a provider secret has no string value');
  return out.SecretString;
}

function fromFile(file: string, provider: string): string | undefined {
  const values = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const value = values[provider];
  return typeof value === 'string' ? value : undefined;
}

export const secrets: SecretSource = {
  get(provider) {
    let value = cache.get(provider);
    if (!value) {
      const { providerSecretArns, providerSecretsFile } = config();
      const arn = providerSecretArns[provider];
      value = arn ? fromSecretsManager(arn) : Promise.resolve(providerSecretsFile ? fromFile(providerSecretsFile, provider) : undefined);
      // A failed read is not cached: the next request tries again.
      value.catch(() => cache.delete(provider));
      cache.set(provider, value);
    }
    return value;
  },
  has(provider) {
    const { providerSecretArns, providerSecretsFile } = config();
    return provider in providerSecretArns || (providerSecretsFile !== undefined && fromFile(providerSecretsFile, provider) !== undefined);
  },
};
