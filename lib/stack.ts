import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { Api } from './api';
import { Custody } from './custody';
import { Data } from './data';
import { Observability } from './observability';
import { STACK_OUTPUTS } from './outputs';

export const STACK_NAME = 'NorthernInference';
/** Data residency: the gateway, its tables, logs and keys live in Canada. */
export const REGION = 'ca-central-1';

/** The whole gateway. Output ids are read by the `ni` CLI (bin/cli-env.ts): keep them stable. */
export class NorthernInferenceStack extends Stack {
  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, { description: 'Northern Inference: OpenAI-compatible LLM gateway (ca-central-1)', ...props });

    const { tables } = new Data(this, 'Data');
    const custody = new Custody(this, 'Custody', { ledgerTable: tables.ledger });
    const api = new Api(this, 'Api', { tables, custody });
    const observability = new Observability(this, 'Observability', {
      api: api.restApi,
      functions: {
        gateway: api.functions.gateway.fn,
        authorizer: api.functions.authorizer.fn,
        billing: api.functions.billing.fn,
        usage: api.functions.usage.fn,
        'ledger-writer': custody.writer.fn,
      },
      tables,
      custodyDeadLetterQueue: custody.deadLetterQueue,
      ledgerQueue: custody.ledgerQueue,
      ledgerDeadLetterQueue: custody.ledgerDeadLetterQueue,
      fallbackQueue: custody.fallbackQueue,
      fallbackDeadLetterQueue: custody.fallbackDeadLetterQueue,
    });

    const outputs: Record<keyof typeof STACK_OUTPUTS, string> = {
      apiUrl: api.url,
      keysTable: tables.keys.tableName,
      usageTable: tables.usage.tableName,
      ledgerTable: tables.ledger.tableName,
      eventBusName: custody.bus.eventBusName,
      custodyFallbackQueueUrl: custody.fallbackQueue.queueUrl,
      ledgerSigningKeyId: custody.signingKey.keyId,
      ledgerAnchorBucket: custody.anchorBucket.bucketName,
      dashboardName: observability.dashboard.dashboardName,
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, STACK_OUTPUTS[name as keyof typeof STACK_OUTPUTS], { value });
  }
}

/** Stack props for a deployment: ca-central-1 always; the account when the CLI knows it, else env-agnostic. */
export function stackProps(env: NodeJS.ProcessEnv = process.env): StackProps {
  return { stackName: STACK_NAME, env: { region: REGION, account: env.CDK_DEFAULT_ACCOUNT } };
}
