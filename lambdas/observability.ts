import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { config } from './config';
import { METRICS_NAMESPACE, SERVICE_NAME } from './core/metrics';

/**
 * Structured JSON logs. Never pass prompt or completion text, key secrets, Authorization headers or PII
 * values: log ids, counts, sizes and codes only.
 */
export const logger = new Logger({ serviceName: SERVICE_NAME, logLevel: config().logLevel });

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
