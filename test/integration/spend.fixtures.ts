import type { CustodyEvent } from '../../lambdas/core/custody';
import { GatewayError } from '../../lambdas/core/errors';
import type { Principal } from '../../lambdas/core/principal';
import type { Reservation } from '../../lambdas/app/ports';
import { custodyEvent as validCustodyEvent } from '../support/custody';

/** Shared by the spend and usage tests. */
export function principal(keyId: string, maxSpendPerDay: number | null, timezone = 'America/Toronto'): Principal {
  return { keyId, tier: 'global', tierPinned: false, allowedTiers: ['global'], maxSpendPerDay, timezone, piiMode: 'substitute', requestsPerMinute: null, maxConcurrent: null };
}

/** The custody event the gateway would build for a settled reservation. */
export function custodyEvent(r: Reservation, cost: number, over: Partial<CustodyEvent> = {}, endedAt = new Date()): CustodyEvent {
  const started = new Date(endedAt.getTime() - 1500);
  return validCustodyEvent({
    request_id: r.requestId,
    key_id: r.keyId,
    started_at: started.toISOString(),
    first_byte_at: new Date(started.getTime() + 300).toISOString(),
    ended_at: endedAt.toISOString(),
    model: r.model,
    privacy_tier: r.tier,
    jurisdiction: 'US',
    route: { provider: 'bedrock', region: 'ca-central-1', upstream_id: 'us.anthropic.claude-haiku-4-5-20251001-v1:0' },
    custody_path: ['ni-gateway@ca-central-1'],
    usage: { input_tokens: 10 * cost, output_tokens: cost, cache_read_tokens: 1, cache_write_tokens: 2 },
    cost_micro_cad: cost,
    pii_substitutions: {},
    request_sha256: null,
    response_sha256: '0'.repeat(64),
    ...over,
  });
}

/** The GatewayError a promise rejects with (anything else fails the test). */
export async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}
