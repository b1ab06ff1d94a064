import { createGateway, type Gateway } from './app/gateway';
import { catalog } from './catalog';
import { config } from './config';
import { flushMetrics, logger, recordRequestMetrics } from './observability';
import { createProviders } from './providers/registry';
import { secrets } from './secrets';
import { createCustomerCredentials } from './store/byok-credentials';
import { emitCustodyEvent } from './store/custody-events';
import { getReceipt } from './store/ledger';
import { admitRequest, releaseRequest } from './store/rate-limits';
import { keep, reserve, settle, unreserved } from './store/spend';
import type { GatewayPorts } from './app/ports';

type Schedule = GatewayPorts['schedule'];

const timers: Schedule = (ms, fire) => {
  const timer = setTimeout(fire, ms);
  timer.unref();
  return () => clearTimeout(timer);
};
let scheduler = timers;

/**
 * Who runs the request flow's timers (deadlines, first-byte timeouts, settle retries) from now on: tests of the
 * local runtime fire them by hand; `null` gives them back to the timers.
 */
export function useScheduler(s: Schedule | null): void {
  scheduler = s ?? timers;
}

/**
 * The composition root: the request flow wired to the real stores and providers, as the configuration says.
 * The gateway's Lambda handler builds it once per execution environment; the local runtime serves the same
 * handler, having first pointed the SDK clients at its own endpoints (lambdas/sdk.ts).
 */
export function composeGateway(): Gateway {
  const cfg = config();
  const { endpoints } = catalog();
  const openaiCompatible = Object.fromEntries(Object.entries(endpoints).map(([name, e]) => [name, { ...e, base_url: cfg.openaiCompatibleBaseUrls[name] ?? e.base_url }]));
  return createGateway({
    catalog: catalog(),
    providers: createProviders({
      endpoints: {
        bedrock: cfg.endpoints.bedrock, azure_openai: cfg.endpoints.azure_openai, openai: cfg.endpoints.openai,
        vertex_ai: cfg.endpoints.vertex_ai, anthropic: cfg.endpoints.anthropic,
      },
      vertexProject: cfg.vertexProject,
      secrets,
      openaiCompatible,
    }),
    spend: { reserve: (p, id, amount, model, tier) => reserve(p, id, amount, model, tier), unreserved, settle, keep },
    limits: { admit: (p, requestId) => admitRequest(p, requestId), release: releaseRequest },
    custody: { emit: emitCustodyEvent, receipt: getReceipt },
    byok: createCustomerCredentials({ ttlMs: cfg.keyCacheTtlMs, now: Date.now }),
    metrics: {
      request(e, m) {
        recordRequestMetrics(e, m);
        flushMetrics();
      },
    },
    log: logger,
    now: Date.now,
    schedule: (ms, fire) => scheduler(ms, fire),
    deadlines: cfg.upstreamDeadlines,
    gatewayRegion: cfg.gatewayRegion,
    simulatedProviders: cfg.simulatedProviders,
    upstreamFirstByteTimeoutMs: cfg.upstreamFirstByteTimeoutMs,
  });
}
