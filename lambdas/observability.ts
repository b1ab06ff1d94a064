import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { config } from './config';
import { DIMENSION, METRIC, METRICS_NAMESPACE, SERVICE_NAME } from './core/metrics';
import { catalog } from './catalog';
import type { CustodyEvent } from './core/custody';
import type { Tier } from './core/tiers';

/**
 * Structured JSON logs. Never pass prompt or completion text, key secrets, Authorization headers or PII
 * values: log ids, counts, sizes and codes only.
 */
export const logger = new Logger({ serviceName: SERVICE_NAME, logLevel: config().logLevel });

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });

/**
 * Request metrics as CloudWatch embedded metric format (EMF) documents on stdout.
 *
 * EMF applies every dimension set of a document to every metric in it, and powertools merges repeated
 * metric names into one value array. Requests for different models buffered in one document would therefore
 * be counted under whichever Model/Tier was set last, so each request is written as its own document, built
 * and published in one synchronous run on a private instance (nothing can interleave with it, even when one
 * process serves many requests at once). Each document carries two dimension sets: [service, Model, Tier]
 * and [service] alone (totals for alarms, which cannot sum across dimension values). Errors additionally
 * get a document of their own with [service, Model, Tier, ErrorType].
 *
 * `NI_METRICS=off` (set by the local runtime) emits nothing.
 */
type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];
type Value = [name: string, unit: Unit, value: number];

const enabled = () => config().metrics;

let doc: Metrics | undefined;
const emf = () => (doc ??= new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME }));

function publish(dimensions: Record<string, string>, at: number, values: Value[], withTotals = true): void {
  const m = emf();
  m.addDimensions(dimensions);
  if (withTotals) m.addDimensions({});
  m.setTimestamp(at);
  // A non-finite value would serialize as null and make CloudWatch reject the whole document.
  for (const [name, unit, value] of values) if (Number.isFinite(value)) m.addMetric(name, unit, value);
  m.publishStoredMetrics();
}

/** The Model dimension takes catalog ids only: whatever else a client typed is neither bounded nor safe to publish. */
const modelDimension = (model: string) => (catalog().byId.has(model) ? model : 'unknown');

export interface RequestMetricsExtra {
  ttftMs: number | null;
  durationMs: number;
  upstreamThrottles: number;
  /** Class of failure for the ErrorType dimension; defaults to the event's error code. */
  errorType?: string;
}

/** One request's metrics (after the response ended). A request with status "error" also counts in Errors. */
export function recordRequestMetrics(e: CustodyEvent, extra: RequestMetricsExtra): void {
  if (!enabled()) return;
  const at = Date.parse(e.ended_at);
  const failed = e.status === 'error';
  const byModel = { [DIMENSION.model]: modelDimension(e.model), [DIMENSION.tier]: e.privacy_tier };
  const pii = Object.values(e.pii_substitutions).reduce((a: number, n) => a + (n ?? 0), 0);
  publish(byModel, at, [
    [METRIC.requests, MetricUnit.Count, 1],
    [METRIC.inputTokens, MetricUnit.Count, e.usage.input_tokens],
    [METRIC.outputTokens, MetricUnit.Count, e.usage.output_tokens],
    [METRIC.cacheReadTokens, MetricUnit.Count, e.usage.cache_read_tokens],
    [METRIC.cacheWriteTokens, MetricUnit.Count, e.usage.cache_write_tokens],
    [METRIC.costMicroCad, MetricUnit.Count, e.cost_micro_cad],
    ...(extra.ttftMs === null ? [] : [[METRIC.timeToFirstToken, MetricUnit.Milliseconds, extra.ttftMs] as Value]),
    [METRIC.duration, MetricUnit.Milliseconds, extra.durationMs],
    [METRIC.errors, MetricUnit.Count, failed ? 1 : 0],
    [METRIC.piiSubstitutions, MetricUnit.Count, pii],
    [METRIC.upstreamThrottles, MetricUnit.Count, extra.upstreamThrottles],
  ]);
  if (failed) {
    const errorType = extra.errorType ?? e.error_code ?? 'unknown';
    publish({ ...byModel, [DIMENSION.errorType]: errorType }, at, [[METRIC.errors, MetricUnit.Count, 1]], false);
  }
}

/** A request refused at admission because its key's daily spend cap is reached. */
export function recordSpendCapRejection(model: string, tier: Tier): void {
  if (!enabled()) return;
  publish({ [DIMENSION.model]: modelDimension(model), [DIMENSION.tier]: tier }, Date.now(), [[METRIC.spendCapRejections, MetricUnit.Count, 1]]);
}

/** Publishes what others buffered on the shared `metrics` instance (call once per invocation, at its end). */
export function flushMetrics(): void {
  if (!metrics.hasStoredMetrics()) return;
  if (enabled()) {
    metrics.publishStoredMetrics();
  } else {
    metrics.clearMetrics();
    metrics.clearDimensions();
    metrics.clearMetadata();
  }
}
