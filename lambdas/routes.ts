/**
 * The one route table: the CDK API (lib/api.ts), the local server (local/server.ts) and the handlers' bundles
 * (lib/bundling.ts) are all built from it. `path` is API Gateway's resource path; `{proxy+}` takes the rest.
 */
export interface RouteSpec {
  method: 'GET' | 'POST' | 'ANY';
  path: string;
  /** Behind the API key authorizer. */
  auth: boolean;
  /** The file under lambdas/handlers/ exporting `handler`. */
  handler: 'gateway' | 'billing' | 'usage' | 'portal' | 'portal-assets';
  /** Lambda response streaming (the integration's responseTransferMode STREAM). */
  streaming: boolean;
  /** Cross-origin use allowed (CORS preflights answered); false: the portal, same-origin only. */
  cors: boolean;
}

export const ROUTES: readonly RouteSpec[] = [
  { method: 'ANY', path: '/v1/{proxy+}', auth: true, handler: 'gateway', streaming: true, cors: true },
  { method: 'GET', path: '/api/billing/models', auth: false, handler: 'billing', streaming: false, cors: true },
  { method: 'GET', path: '/api/usage', auth: true, handler: 'usage', streaming: false, cors: true },
  // The portal: its JSON API checks its own sign-in tokens (Cognito's, or the local runtime's), not API keys.
  { method: 'ANY', path: '/api/portal/{proxy+}', auth: false, handler: 'portal', streaming: false, cors: false },
  { method: 'GET', path: '/portal', auth: false, handler: 'portal-assets', streaming: false, cors: false },
  { method: 'GET', path: '/portal/{proxy+}', auth: false, handler: 'portal-assets', streaming: false, cors: false },
];

/** API Gateway's health check, answered by API Gateway itself (a mock integration), as locally. */
export const HEALTH_PATH = '/health';

/** Whether a request path falls under a route's resource path, as API Gateway matches it (a trailing slash aside). */
export function routeMatches(route: RouteSpec, path: string): boolean {
  if (path.length > 1 && path.endsWith('/') && path.slice(0, -1) === route.path) return true;
  if (route.path.endsWith('/{proxy+}')) {
    const base = route.path.slice(0, -'{proxy+}'.length);
    return path.startsWith(base) && path.length > base.length;
  }
  return path === route.path;
}

/** The route a request path takes, if any (method aside: a route's handler answers wrong methods itself). */
export const findRoute = (path: string): RouteSpec | undefined => ROUTES.find((r) => routeMatches(r, path));
