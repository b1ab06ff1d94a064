import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { Api } from './api';
import { ByokKey } from './byok';
import { Custody } from './custody';
import { Data } from './data';
import { CustomDomain } from './domain';
import { Observability } from './observability';
import { CUSTOM_DOMAIN_TARGET_OUTPUT, STACK_OUTPUTS } from './outputs';
import { DEFAULT_STAGE, settings as settingsOf, stackNameFor } from './settings';

/** Data residency: the gateway, its tables, logs and keys live in Canada. */
export const REGION = 'ca-central-1';

/**
 * The whole gateway, one stack per stage; its settings come from CDK context (lib/settings.ts). Output ids are read
 * by the `ni` CLI (bin/cli-env.ts): keep them stable.
 */
export class NorthernInferenceStack extends Stack {
  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, { description: 'Northern Inference: OpenAI-compatible LLM gateway (ca-central-1)', ...props });
    const settings = settingsOf(this);

    const { tables } = new Data(this, 'Data');
    const custody = new Custody(this, 'Custody', { ledgerTable: tables.ledger });
    const byok = new ByokKey(this, 'Byok');
    const api = new Api(this, 'Api', { tables, custody, byok, settings });
    const domain = settings.domainName ? new CustomDomain(this, 'CustomDomain', { ...settings, domainName: settings.domainName, api: api.restApi }) : undefined;
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
      alarmEmail: settings.alarmEmail,
      alarmTopicArn: settings.alarmTopicArn,
    });

    const outputs: Record<keyof typeof STACK_OUTPUTS, string> = {
      apiUrl: api.url,
      baseUrl: domain ? `https://${settings.domainName}/v1` : `${api.url}/v1`,
      keysTable: tables.keys.tableName,
      usageTable: tables.usage.tableName,
      ledgerTable: tables.ledger.tableName,
      eventBusName: custody.bus.eventBusName,
      custodyFallbackQueueUrl: custody.fallbackQueue.queueUrl,
      ledgerSigningKeyId: custody.signingKey.keyId,
      ledgerAnchorBucket: custody.anchorBucket.bucketName,
      byokKmsKeyId: byok.key.keyId,
      dashboardName: observability.dashboard.dashboardName,
      alarmTopicArn: observability.alarmTopic.topicArn,
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, STACK_OUTPUTS[name as keyof typeof STACK_OUTPUTS], { value });
    if (domain && !domain.zone) {
      new CfnOutput(this, CUSTOM_DOMAIN_TARGET_OUTPUT, { value: domain.domain.domainNameAliasDomainName, description: `Point ${settings.domainName} here (CNAME)` });
    }
  }
}

/** Stack props for a stage: ca-central-1 always; the account when the CLI knows it, else env-agnostic. */
export function stackProps(env: NodeJS.ProcessEnv = process.env, stage = DEFAULT_STAGE): StackProps {
  return { stackName: stackNameFor(stage), env: { region: REGION, account: env.CDK_DEFAULT_ACCOUNT } };
}
