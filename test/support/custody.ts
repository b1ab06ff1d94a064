import { randomUUID } from 'node:crypto';
import { CUSTODY_SCHEMA_VERSION, type CustodyEvent } from '../../lambdas/core/custody';

/** A valid custody event for tests (and the benchmarks: no jest code here); `over` replaces fields. */
export function custodyEvent(over: Partial<CustodyEvent> = {}): CustodyEvent {
  const started = new Date(Date.UTC(2025, 0, 15, 12, 0, 0));
  return {
    schema_version: CUSTODY_SCHEMA_VERSION,
    request_id: `req_${randomUUID().replace(/-/g, '')}`,
    key_id: 'key_test1',
    started_at: started.toISOString(),
    first_byte_at: new Date(started.getTime() + 300).toISOString(),
    ended_at: new Date(started.getTime() + 1_200).toISOString(),
    model: 'claude-sonnet-4',
    privacy_tier: 'managed_canadian_cloud',
    jurisdiction: 'CA',
    route: { provider: 'bedrock', region: 'ca-central-1', upstream_id: 'anthropic.claude-sonnet-4' },
    custody_path: ['ni-gateway@ca-central-1', 'bedrock@ca-central-1#anthropic.claude-sonnet-4'],
    usage: { input_tokens: 120, output_tokens: 48, cache_read_tokens: 0, cache_write_tokens: 0 },
    cost_micro_cad: 1234,
    status: 'ok',
    http_status: 200,
    finish_reason: 'stop',
    error_code: null,
    pii_substitutions: { EMAIL: 1 },
    request_sha256: 'a'.repeat(64),
    response_sha256: 'b'.repeat(64),
    ...over,
  };
}
