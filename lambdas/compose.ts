import { createGateway, type Gateway } from './app/gateway';
import { catalog } from './catalog';
import { config } from './config';
import { logger } from './observability';
import { createProviders } from './providers/registry';
import { secrets } from './secrets';
import { emitCustodyEvent } from './store/custody-events';
import { getReceipt } from './store/ledger';
import { reserve, settle, unreserved } from './store/spend';
import { flushMetrics, recordRequestMetrics } from './telemetry';

/**
 * The composition root: the request flow wired to the real stores and providers, as the configuration says.
 * The gateway's Lambda handler builds it once per execution environment; the local runtime serves the same
 * handler, having first pointed the SDK clients at its own endpoints (lambdas/sdk.ts).
 */
export function composeGateway(): Gateway {
  const cfg = config();
  return createGateway({
    catalog: catalog(),
    providers: createProviders({
      endpoints: { bedrock: cfg.endpoints.bedrock, vertex_ai: cfg.endpoints.vertex_ai, anthropic: cfg.endpoints.anthropic },
      vertexProject: cfg.vertexProject,
      secrets,
    }),
    spend: { reserve: (p, id, amount, model, tier) => reserve(p, id, amount, model, tier), unreserved, settle },
    custody: { emit: emitCustodyEvent, receipt: getReceipt },
    metrics: {
      request(e, m) {
        recordRequestMetrics(e, m);
        flushMetrics();
      },
    },
    log: logger,
    now: Date.now,
    gatewayRegion: cfg.gatewayRegion,
    simulatedProviders: cfg.simulatedProviders,
  });
}
