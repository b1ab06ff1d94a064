import type { Route } from '../../core/catalog';
import type { SecretSource } from '../../secrets';
import { getJson, postForEvents } from '../http';
import { UpstreamError, type Provider } from '../provider';
import { accessTokens, ServiceAccountKey, tokenCache } from './auth';
import { federatedToken, type WorkloadIdentity } from './federation';
import { fromGenerateContentStream, toGenerateContentRequest } from './gemini';

export interface VertexOptions {
  /** Instead of each region's `https://{region}-aiplatform.googleapis.com` (a stand-in, a Private Service Connect endpoint). */
  endpoint?: string;
  /** The Google Cloud project; else the service-account key's `project_id`. */
  project?: string;
  /** Tokens by workload identity federation from the function's AWS role (then `project` is required), instead of the key. */
  workloadIdentity?: WorkloadIdentity;
  secrets: SecretSource;
  now?: () => number;
}

/**
 * The regional endpoint of a route's location. Only a regional endpoint keeps ML processing in its region; the
 * `global` endpoint (aiplatform.googleapis.com) promises no location: the catalog refuses a route there labelled
 * anything but GLOBAL (ROUTE_CHECKS in providers/names.ts).
 */
export const regionalEndpoint = (region: string) => (region === 'global' ? 'https://aiplatform.googleapis.com' : `https://${region}-aiplatform.googleapis.com`);

/**
 * Vertex AI's Gemini models, streamed. Credentials: workload identity federation when configured, else the
 * `vertex_ai` secret, a service-account key (JSON).
 */
export function createVertexProvider(opts: VertexOptions): Provider {
  const credentials = vertexCredentials(opts);
  const { endpoint } = opts;
  return {
    async stream(route, request, maxTokens, signal) {
      const { projectId, token } = await credentials();
      const base = (endpoint ?? regionalEndpoint(route.region)).replace(/\/+$/, '');
      const model = `projects/${encodeURIComponent(projectId)}/locations/${encodeURIComponent(route.region)}/publishers/google/models/${encodeURIComponent(route.upstream_id)}`;
      const body = JSON.stringify(toGenerateContentRequest(request, maxTokens));
      const post = await postForEvents(`${base}/v1/${model}:streamGenerateContent?alt=sse`, { authorization: `Bearer ${await token()}` }, body, { signal });
      return { events: fromGenerateContentStream(post.events, post.requestSha256), requestSha256: post.requestSha256 };
    },
    custodyHops(route: Route) {
      return [`vertex-ai@${route.region}#${route.upstream_id}`];
    },
  };
}

/**
 * Whether Vertex AI serves Google's publisher model `route.upstream_id` from the route's location
 * (`GET /v1/publishers/google/models/{model}` on the regional endpoint), asked with the gateway's credentials
 * (one token for every route asked about).
 */
export function publisherModelExists(opts: VertexOptions): (route: Route) => Promise<boolean> {
  const credentials = vertexCredentials(opts);
  return async (route) => {
    const { token } = await credentials();
    const base = (opts.endpoint ?? regionalEndpoint(route.region)).replace(/\/+$/, '');
    const { status } = await getJson(`${base}/v1/publishers/google/models/${encodeURIComponent(route.upstream_id)}`, { authorization: `Bearer ${await token()}` });
    if (status === 200 || status === 404) return status === 200;
    throw new Error(`Vertex AI answered HTTP ${status} for publishers/google/models/${route.upstream_id} in ${route.region}`);
  };
}

/** The project and a token source for the next call, from the configured credentials; none usable: not enabled. */
function vertexCredentials({ project, workloadIdentity, secrets, now = Date.now }: VertexOptions): () => Promise<{ projectId: string; token: () => Promise<string> }> {
  const tokens = accessTokens(now);
  const federated = tokenCache(now);
  const keys = new Map<string, ServiceAccountKey | null>();

  function serviceAccount(secret: string): ServiceAccountKey | null {
    let key = keys.get(secret);
    if (key === undefined) {
      try {
        key = ServiceAccountKey.parse(JSON.parse(secret));
      } catch {
        key = null; // never echo the secret: only that it is not a service-account key
      }
      keys.set(secret, key);
    }
    return key;
  }

  return async () => {
    if (workloadIdentity) {
      if (!project) throw new UpstreamError('not_enabled');
      const wi = workloadIdentity;
      return { projectId: project, token: () => federated(`${wi.audience} ${wi.serviceAccount ?? ''}`, () => federatedToken(wi, now)) };
    }
    const secret = await secrets.get('vertex_ai');
    const key = secret ? serviceAccount(secret) : null;
    const projectId = project ?? key?.project_id;
    if (!key || !projectId) throw new UpstreamError('not_enabled');
    return { projectId, token: () => tokens.token(key) };
  };
}
