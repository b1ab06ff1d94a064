/** The stack's output names: written by lib/stack.ts, read by `ni --stack` (bin/cli-env.ts). No CDK import here. */
export const STACK_OUTPUTS = {
  apiUrl: 'ApiUrl',
  /** The OpenAI base URL clients use: on the custom domain when there is one. */
  baseUrl: 'BaseUrl',
  keysTable: 'KeysTableName',
  usageTable: 'UsageTableName',
  ledgerTable: 'LedgerTableName',
  eventBusName: 'EventBusName',
  custodyFallbackQueueUrl: 'CustodyFallbackQueueUrl',
  ledgerSigningKeyId: 'LedgerSigningKeyId',
  ledgerAnchorBucket: 'LedgerAnchorBucketName',
  /** The KMS key sealing customers' own provider credentials (`ni keys byok set` seals with it). */
  byokKmsKeyId: 'ByokKmsKeyId',
  dashboardName: 'DashboardName',
  alarmTopicArn: 'AlarmTopicArn',
} as const;

/** With a custom domain outside Route 53 (certificateArn given): the name its DNS record must point at. */
export const CUSTOM_DOMAIN_TARGET_OUTPUT = 'CustomDomainTarget';
