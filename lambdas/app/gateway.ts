import { modelsForKey } from '../core/byok';
import type { Model } from '../core/catalog';
import { badRequest, GatewayError } from '../core/errors';
import { resolveTier, type Principal } from '../core/principal';
import type { Tier } from '../core/tiers';
import { chatCompletions } from './chat';
import { GATEWAY_ERRORS, requestHeaders, sendError, sendJson, type HttpRequest, type ResponseSink } from './http';
import type { GatewayPorts } from './ports';

/** Catalog models carry no creation date; OpenAI's list format wants one. */
const LISTED_AT = Math.floor(Date.UTC(2025, 0, 1) / 1000);

export interface Gateway {
  /** The `/v1` routes. Resolves when the request is completely handled, its records included. */
  handleV1(req: HttpRequest, sink: ResponseSink): Promise<void>;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`Malformed percent-encoding in '${segment}'.`, 'request_id', 'invalid_request_id');
  }
}

/** The request flow over its ports: built once per process by the composition root (lambdas/compose.ts). */
export function createGateway(ports: GatewayPorts): Gateway {
  const chat = chatCompletions(ports);
  const modelLists = new Map<Tier, string>();

  const listOf = (models: Model[]) => JSON.stringify({ object: 'list', data: models.map((m) => ({ id: m.id, object: 'model', created: LISTED_AT, owned_by: m.provider })) });

  /**
   * The OpenAI model list a key sees under a tier (Cursor's "Verify" calls it): built once per tier for keys without
   * their own credentials; per request for a key with some, which may add models the deployment does not serve.
   */
  function modelList(tier: Tier, byok: Principal['byok']): string {
    if (byok) return listOf(modelsForKey(ports.catalog, tier, byok));
    let body = modelLists.get(tier);
    if (!body) modelLists.set(tier, (body = listOf(modelsForKey(ports.catalog, tier, undefined))));
    return body;
  }

  return {
    async handleV1(req, sink) {
      // No OPTIONS here: API Gateway (and the local runtime in its place) answers preflights without the Lambda.
      const headers = requestHeaders(req.requestId);
      try {
        const principal = req.principal;
        if (!principal) throw GATEWAY_ERRORS.invalidApiKey();
        const path = req.path.replace(/\/+$/, '');
        if (path === '/v1/chat/completions' && req.method === 'POST') {
          // Returned, not awaited: this frame, and with it the request and the response sink, is let go while
          // the records are written.
          return (await chat(req, principal, sink)).recorded;
        }
        if (path === '/v1/models' && req.method === 'GET') {
          const tier = resolveTier(principal, req.headers['x-ni-privacy-tier']);
          sendJson(sink, 200, { ...headers, 'x-ni-privacy-tier': tier }, modelList(tier, principal.byok));
          return;
        }
        const custody = /^\/v1\/custody\/([^/]+)$/.exec(path);
        if (custody && req.method === 'GET') {
          const receipt = await ports.custody.receipt(decodeSegment(custody[1]), principal.keyId);
          if (!receipt) throw new GatewayError(404, `No custody record '${custody[1]}' for this API key.`, 'not_found_error', 'custody_record_not_found');
          sendJson(sink, 200, headers, receipt);
          return;
        }
        throw new GatewayError(404, `Unknown route: ${req.method} ${req.path}`, 'invalid_request_error', 'unknown_url');
      } catch (err) {
        sendError(sink, headers, err);
      }
    },
  };
}
