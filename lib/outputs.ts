/** The stack's output names: written by lib/stack.ts, read by `ni --stack` (bin/cli-env.ts). No CDK import here. */
export const STACK_OUTPUTS = {
  apiUrl: 'ApiUrl',
  keysTable: 'KeysTableName',
  usageTable: 'UsageTableName',
  ledgerTable: 'LedgerTableName',
  eventBusName: 'EventBusName',
  custodyFallbackQueueUrl: 'CustodyFallbackQueueUrl',
  ledgerSigningKeyId: 'LedgerSigningKeyId',
  ledgerAnchorBucket: 'LedgerAnchorBucketName',
  dashboardName: 'DashboardName',
} as const;
