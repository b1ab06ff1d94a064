import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { createGateway, type Gateway } from './app/gateway';
import { catalog } from './catalog';
import { configureCatalog, type Catalog } from './core/catalog';
import { config } from './config';
import { flushMetrics, logger, recordRequestMetrics } from './observability';
import { createProviders, missingConfiguration, type ProviderSettings } from './providers/registry';
import { secrets } from './secrets';
import { emitCustodyEvent } from './store/custody-events';
import { getReceipt } from './store/ledger';
import { admitRequest, releaseRequest } from './store/rate-limits';
import { keep, reserve, settle, unreserved } from './store/spend';

/**
 * The composition root: the request flow wired to the real stores and providers, as the configuration says.
 * The gateway's Lambda handler builds it once per execution environment; the local runtime serves the same
 * handler, having first pointed the SDK clients at its own endpoints (lambdas/sdk.ts).
 */
export function composeGateway(): Gateway {
  const cfg = config();
  const settings = providerSettings();
  return createGateway({
    catalog: configureCatalog(catalog(), missingConfiguration(settings)),
    providers: createProviders(settings),
    spend: { reserve: (p, id, amount, model, tier) => reserve(p, id, amount, model, tier), unreserved, settle, keep },
    limits: { admit: (p, requestId) => admitRequest(p, requestId), release: releaseRequest },
    custody: { emit: emitCustodyEvent, receipt: getReceipt },
    metrics: {
      request(e, m) {
        recordRequestMetrics(e, m);
        flushMetrics();
      },
    },
    log: logger,
    now: Date.now,
    schedule(ms, fire) {
      const timer = setTimeout(fire, ms);
      timer.unref();
      return () => clearTimeout(timer);
    },
    deadlines: cfg.upstreamDeadlines,
    gatewayRegion: cfg.gatewayRegion,
    simulatedProviders: cfg.simulatedProviders,
    upstreamFirstByteTimeoutMs: cfg.upstreamFirstByteTimeoutMs,
  });
}

/**
 * Where each provider is reached and how it is authenticated, as this process's configuration says, for the
 * catalog's OpenAI-compatible `endpoints`.
 */
export function providerSettings(endpoints: Catalog['endpoints'] = catalog().endpoints): ProviderSettings {
  const cfg = config();
  const openaiCompatible = Object.fromEntries(Object.entries(endpoints).map(([name, e]) => [name, { ...e, base_url: cfg.openaiCompatibleBaseUrls[name] ?? e.base_url }]));
  const wi = cfg.vertexWorkloadIdentity;
  return {
    endpoints: {
      bedrock: cfg.endpoints.bedrock, azure_openai: cfg.endpoints.azure_openai, openai: cfg.endpoints.openai,
      vertex_ai: cfg.endpoints.vertex_ai, anthropic: cfg.endpoints.anthropic,
    },
    vertexProject: cfg.vertexProject,
    // Signed with the function's own role credentials, as its AWS SDK clients resolve them.
    vertexWorkloadIdentity: wi && { ...wi, awsRegion: cfg.region, awsCredentials: defaultProvider() },
    secrets,
    openaiCompatible,
  };
}
