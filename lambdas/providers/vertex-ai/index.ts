import type { Route } from '../../core/catalog';
import type { SecretSource } from '../../secrets';
import { postForEvents } from '../http';
import { UpstreamError, type Provider } from '../provider';
import { accessTokens, ServiceAccountKey } from './auth';
import { fromGenerateContentStream, toGenerateContentRequest } from './gemini';

export interface VertexOptions {
  /** Instead of each region's `https://{region}-aiplatform.googleapis.com` (a stand-in, a Private Service Connect endpoint). */
  endpoint?: string;
  /** The Google Cloud project; else the service-account key's `project_id`. */
  project?: string;
  secrets: SecretSource;
  now?: () => number;
}

/**
 * The regional endpoint of a route's location. Only a regional endpoint keeps ML processing in its region; the
 * `global` endpoint (aiplatform.googleapis.com) promises no location: the catalog refuses a route there labelled
 * anything but GLOBAL (ROUTE_CHECKS in providers/names.ts).
 */
export const regionalEndpoint = (region: string) => (region === 'global' ? 'https://aiplatform.googleapis.com' : `https://${region}-aiplatform.googleapis.com`);

/** Vertex AI's Gemini models, streamed; credentials: the `vertex_ai` secret, a service-account key (JSON). */
export function createVertexProvider({ endpoint, project, secrets, now }: VertexOptions): Provider {
  const tokens = accessTokens(now);
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

  return {
    async stream(route, request, maxTokens, signal) {
      const secret = await secrets.get('vertex_ai');
      const key = secret ? serviceAccount(secret) : null;
      const projectId = project ?? key?.project_id;
      if (!key || !projectId) throw new UpstreamError('not_enabled');
      const base = (endpoint ?? regionalEndpoint(route.region)).replace(/\/+$/, '');
      const model = `projects/${encodeURIComponent(projectId)}/locations/${encodeURIComponent(route.region)}/publishers/google/models/${encodeURIComponent(route.upstream_id)}`;
      const body = JSON.stringify(toGenerateContentRequest(request, maxTokens));
      const post = await postForEvents(`${base}/v1/${model}:streamGenerateContent?alt=sse`, { authorization: `Bearer ${await tokens.token(key)}` }, body, { signal });
      return { events: fromGenerateContentStream(post.events, post.requestSha256), requestSha256: post.requestSha256 };
    },
    custodyHops(route: Route) {
      return [`vertex-ai@${route.region}#${route.upstream_id}`];
    },
  };
}
