import type { CustodyEvent } from '../../lambdas/core/custody';
import { METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambdas/core/metrics';
import { flushMetrics, metrics, recordRequestMetrics, recordSpendCapRejection } from '../../lambdas/observability';
import { reloadConfig } from '../../lambdas/config';

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [k: string]: unknown;
}

function event(over: Partial<CustodyEvent> = {}): CustodyEvent {
  return {
    schema_version: 1,
    request_id: 'req_1',
    key_id: 'key_secretive',
    started_at: '2025-01-01T00:00:00.000Z',
    first_byte_at: '2025-01-01T00:00:00.250Z',
    ended_at: '2025-01-01T00:00:02.000Z',
    model: 'anthropic/claude-haiku-4.5',
    privacy_tier: 'global',
    jurisdiction: 'US',
    route: { provider: 'bedrock', region: 'ca-central-1', upstream_id: 'us.x' },
    custody_path: [],
    usage: { input_tokens: 100, output_tokens: 20, cache_read_tokens: 5, cache_write_tokens: 7 },
    cost_micro_cad: 321,
    status: 'ok',
    http_status: 200,
    finish_reason: 'stop',
    error_code: null,
    pii_substitutions: { EMAIL: 2, PHONE: 1 } as CustodyEvent['pii_substitutions'],
    request_sha256: null,
    response_sha256: 'a'.repeat(64),
    ...over,
  };
}

/** Runs `fn` and returns the EMF documents it wrote to stdout. */
function captured(fn: () => void): Emf[] {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Emf);
}

const Recorded = (doc: Emf) => doc._aws.CloudWatchMetrics[0];

beforeEach(() => {
  delete process.env.NI_METRICS;
  reloadConfig();
  // Recent timestamps only: EMF rejects documents older than 14 days.
  jest.useFakeTimers({ now: new Date('2025-01-01T00:00:03Z'), doNotFake: ['nextTick', 'setImmediate', 'setTimeout', 'setInterval'] });
});
afterEach(() => jest.useRealTimers());

describe('request metrics', () => {
  it('publishes a model the catalog does not know as "unknown": clients choose that string', () => {
    const [doc] = captured(() => recordRequestMetrics(event({ model: 'jane.tremblay@northwind.ca', status: 'error', http_status: 400 }), { ttftMs: null, durationMs: 1, upstreamThrottles: 0 }));
    expect(doc.Model).toBe('unknown');
    expect(JSON.stringify(doc)).not.toContain('northwind');
  });

  it('writes one EMF document per request, dimensioned by model and tier, plus service totals', () => {
    const docs = captured(() => {
      recordRequestMetrics(event(), { ttftMs: 250, durationMs: 2000, upstreamThrottles: 1 });
      recordRequestMetrics(event({ model: 'meta/llama-3-8b', privacy_tier: 'managed_canadian_cloud', cost_micro_cad: 9 }), { ttftMs: null, durationMs: 10, upstreamThrottles: 0 });
    });
    expect(docs).toHaveLength(2);
    const [a, b] = docs;
    for (const d of docs) {
      expect(Recorded(d).Namespace).toBe(METRICS_NAMESPACE);
      expect(Recorded(d).Dimensions).toEqual([['service', 'Model', 'Tier'], ['service']]);
      expect(d.service).toBe(SERVICE_NAME);
      expect(d._aws.Timestamp).toBe(Date.parse('2025-01-01T00:00:02.000Z'));
      // Scalars, never a value array mixing requests.
      expect(d[METRIC.requests]).toBe(1);
    }
    expect(a).toMatchObject({
      Model: 'anthropic/claude-haiku-4.5', Tier: 'global',
      [METRIC.inputTokens]: 100, [METRIC.outputTokens]: 20, [METRIC.cacheReadTokens]: 5, [METRIC.cacheWriteTokens]: 7,
      [METRIC.costMicroCad]: 321, [METRIC.timeToFirstToken]: 250, [METRIC.duration]: 2000, [METRIC.errors]: 0,
      [METRIC.piiSubstitutions]: 3, [METRIC.upstreamThrottles]: 1,
    });
    expect(Recorded(a).Metrics).toContainEqual({ Name: METRIC.duration, Unit: 'Milliseconds' });
    expect(b).toMatchObject({ Model: 'meta/llama-3-8b', Tier: 'managed_canadian_cloud', [METRIC.costMicroCad]: 9 });
    expect(b[METRIC.timeToFirstToken]).toBeUndefined();
    // Nothing identifying the caller.
    expect(JSON.stringify(docs)).not.toContain('key_secretive');
  });

  it('counts a failed request in Errors, and once more by ErrorType in its own document', () => {
    const docs = captured(() =>
      recordRequestMetrics(event({ status: 'error', http_status: 502, error_code: 'upstream_error' }), { ttftMs: null, durationMs: 5, upstreamThrottles: 3, errorType: 'upstream_throttled' }));
    expect(docs).toHaveLength(2);
    expect(docs[0][METRIC.errors]).toBe(1);
    expect(Recorded(docs[1]).Dimensions).toEqual([['service', 'Model', 'Tier', 'ErrorType']]);
    expect(docs[1]).toMatchObject({ ErrorType: 'upstream_throttled', [METRIC.errors]: 1 });
    expect(Recorded(docs[1]).Metrics).toEqual([{ Name: METRIC.errors, Unit: 'Count' }]);

    const [, byCode] = captured(() => recordRequestMetrics(event({ status: 'error', error_code: 'upstream_error' }), { ttftMs: null, durationMs: 5, upstreamThrottles: 0 }));
    expect(byCode.ErrorType).toBe('upstream_error');
  });

  it('does not count a cancelled request as an error', () => {
    const docs = captured(() => recordRequestMetrics(event({ status: 'cancelled' }), { ttftMs: 10, durationMs: 50, upstreamThrottles: 0 }));
    expect(docs).toHaveLength(1);
    expect(docs[0][METRIC.errors]).toBe(0);
  });

  it('records spend-cap rejections', () => {
    const [doc] = captured(() => recordSpendCapRejection('anthropic/claude-opus-4.6', 'global'));
    expect(doc).toMatchObject({ Model: 'anthropic/claude-opus-4.6', Tier: 'global', [METRIC.spendCapRejections]: 1 });
    expect(Recorded(doc).Dimensions).toEqual([['service', 'Model', 'Tier'], ['service']]);
  });

  it('flushes what others buffered on the shared instance, and nothing when empty', () => {
    metrics.addMetric(METRIC.custodyEmitFailures, 'Count', 1);
    const docs = captured(() => flushMetrics());
    expect(docs).toHaveLength(1);
    expect(docs[0][METRIC.custodyEmitFailures]).toBe(1);
    expect(captured(() => flushMetrics())).toEqual([]);
  });

  it('emits nothing with NI_METRICS=off (local runtime)', () => {
    process.env.NI_METRICS = 'off';
    reloadConfig();
    metrics.addMetric(METRIC.custodyEmitFailures, 'Count', 1);
    expect(captured(() => {
      recordRequestMetrics(event({ status: 'error' }), { ttftMs: 1, durationMs: 2, upstreamThrottles: 0 });
      recordSpendCapRejection('m', 'global');
      flushMetrics();
    })).toEqual([]);
    expect(metrics.hasStoredMetrics()).toBe(false);
  });
});

describe('invalid values', () => {
  it('leaves out a non-finite value rather than writing a document CloudWatch would reject', () => {
    delete process.env.NI_METRICS;
    reloadConfig();
    const [doc] = captured(() => recordRequestMetrics(event(), { ttftMs: 1, durationMs: Number.NaN, upstreamThrottles: 0 }));
    expect(doc[METRIC.duration]).toBeUndefined();
    expect(Recorded(doc).Metrics.map((m) => m.Name)).not.toContain(METRIC.duration);
    expect(doc[METRIC.requests]).toBe(1);
  });
});
