/**
 * Names of the metrics the gateway emits (embedded metric format). The CloudWatch dashboard and alarms are
 * built from these same constants, so a renamed metric cannot leave a widget pointing at nothing.
 * Dimensions are model and tier only: never key ids or anything personal.
 */
export const METRICS_NAMESPACE = 'NorthernInference';
export const SERVICE_NAME = 'ni-gateway';

export const METRIC = {
  requests: 'Requests',
  inputTokens: 'InputTokens',
  outputTokens: 'OutputTokens',
  cacheReadTokens: 'CacheReadTokens',
  cacheWriteTokens: 'CacheWriteTokens',
  costMicroCad: 'CostMicroCAD',
  timeToFirstToken: 'TimeToFirstTokenMs',
  duration: 'DurationMs',
  errors: 'Errors',
  spendCapRejections: 'SpendCapRejections',
  piiSubstitutions: 'PiiSubstitutions',
  upstreamThrottles: 'UpstreamThrottles',
  custodyEmitFailures: 'CustodyEmitFailures',
} as const;

export const DIMENSION = { model: 'Model', tier: 'Tier', errorType: 'ErrorType' } as const;
