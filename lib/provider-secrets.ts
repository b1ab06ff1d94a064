import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/**
 * One Secrets Manager secret per provider credential the catalog needs, named by stage
 * (`ni/<stage>/provider/<credential>`). The stack creates each with a random placeholder: calls with it are
 * refused by the provider until the operator puts the real credential in (`aws secretsmanager put-secret-value`).
 * The gateway receives the ARNs, never the values, in NI_PROVIDER_SECRET_ARNS.
 */
export class ProviderSecrets extends Construct {
  readonly byCredential: ReadonlyMap<string, secretsmanager.Secret>;

  constructor(scope: Construct, id: string, props: { stage: string; credentials: string[] }) {
    super(scope, id);
    this.byCredential = new Map(props.credentials.map((name) => {
      const path = name.replace(/:/g, '/');
      const secret = new secretsmanager.Secret(this, path.replace(/[^A-Za-z0-9]/g, '-'), {
        secretName: `ni/${props.stage}/provider/${path}`,
        description: `Northern Inference (${props.stage}): the ${name} credential the gateway calls the provider with`,
        // Deleting the stack must not delete a credential the operator put in by hand.
        removalPolicy: RemovalPolicy.RETAIN,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason: "A provider's API key is issued by the provider (Azure, OpenAI, the endpoint's operator), which no rotation Lambda can do; the operator replaces it when the provider rotates it.",
      });
      return [name, secret];
    }));
  }

  /** NI_PROVIDER_SECRET_ARNS: `{credential: ARN}` as JSON. */
  get environment(): Record<string, string> {
    if (this.byCredential.size === 0) return {};
    return { NI_PROVIDER_SECRET_ARNS: Stack.of(this).toJsonString(Object.fromEntries([...this.byCredential].map(([name, s]) => [name, s.secretArn]))) };
  }

  /** `secretsmanager:GetSecretValue` on exactly these secrets, nothing else. */
  grantRead(grantee: iam.IGrantable): void {
    if (this.byCredential.size === 0) return;
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [...this.byCredential.values()].map((s) => s.secretArn) }));
  }
}
