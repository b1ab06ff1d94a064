import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { BYOK_PROVIDERS, encryptionContext } from '../lambdas/core/byok';

/**
 * The KMS key dedicated to customers' own provider credentials (BYOK): it wraps the data key of each credential's
 * envelope (lambdas/store/byok-keyring.ts) under the encryption context {ni_key_id, provider}. Every grant here
 * requires such a context, so the key serves nothing but BYOK envelopes. The key policy is CDK's default (the
 * account may delegate through IAM): operators running `ni keys byok set` need kms:GenerateDataKey on it through
 * their own IAM permissions.
 */
export class ByokKey extends Construct {
  readonly key: kms.Key;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: "Seals Northern Inference customers' own provider credentials (BYOK envelopes)",
      enableKeyRotation: true,
      // Deleting the stack must not make the stored credentials unreadable; the key is kept (and billed) until removed by hand.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** Only under a BYOK encryption context: exactly its two keys, a known provider, an NI key id. */
  private statement(actions: string[]): iam.PolicyStatement {
    return new iam.PolicyStatement({
      actions,
      resources: [this.key.keyArn],
      conditions: {
        'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': Object.keys(encryptionContext('key_x', 'openai')) },
        StringEquals: { 'kms:EncryptionContext:provider': [...BYOK_PROVIDERS] },
        // NI key ids are `key_` and base62 (core/keys.ts KeyId).
        StringLike: { 'kms:EncryptionContext:ni_key_id': 'key_*' },
      },
    });
  }

  /** The gateway: opens envelopes (Decrypt), and nothing else. */
  grantOpen(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(this.statement(['kms:Decrypt']));
  }

  /** Whatever sets credentials for customers (the portal's API): seals new envelopes (GenerateDataKey), never opens them. */
  grantSeal(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(this.statement(['kms:GenerateDataKey']));
  }
}
