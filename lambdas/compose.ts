import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { createGateway, type Gateway } from './app/gateway';
import { catalog } from './catalog';
import { configureCatalog, withBaseUrls, type Catalog } from './core/catalog';
import { DEFAULT_TIMEZONE } from './core/principal';
import { spendDay } from './core/spend-day';
import { config } from './config';
import { flushMetrics, logger, recordRequestMetrics } from './observability';
import { createProviders, missingConfiguration, type ProviderSettings } from './providers/registry';
import { prefetchSecrets, secrets } from './secrets';
import { createCustomerCredentials } from './store/byok-credentials';
import { createCustodyClient, emitCustodyEvent } from './store/custody-events';
import { ddb } from './store/ddb';
import { resolveCredentialsNow } from './sdk';
import { getReceipt } from './store/ledger';
import { admitRequest, releaseRequest } from './store/rate-limits';
import { keep, release, reserve, settle, unreserved } from './store/spend';
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
  const settings = providerSettings();
  const served = configureCatalog(catalog(), missingConfiguration(settings));
  // What every request needs is made here, at the function's init (which Lambda runs on a full vCPU before the
  // first request): the SDK clients with their credentials, the provider secrets (being read), and the default
  // time zone's day formatter (the first one loads ICU's zone data).
  resolveCredentialsNow(ddb());
  createCustodyClient();
  prefetchSecrets();
  spendDay(DEFAULT_TIMEZONE, new Date());
  const bedrockRegions = [...new Set(served.models.flatMap((m) => m.served.filter((r) => r.provider === 'bedrock').map((r) => r.region)))];
  return createGateway({
    catalog: served,
    providers: createProviders({ ...settings, bedrockRegions }),
    spend: { reserve: (p, id, amount, model, tier) => reserve(p, id, amount, model, tier), unreserved, settle, release, keep },
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

/**
 * Where each provider is reached and how it is authenticated, as this process's configuration says, for the
 * catalog's OpenAI-compatible `endpoints`.
 */
export function providerSettings(endpoints: Catalog['endpoints'] = catalog().endpoints): ProviderSettings {
  const cfg = config();
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
    openaiCompatible: withBaseUrls(endpoints, cfg.openaiCompatibleBaseUrls),
  };
}
