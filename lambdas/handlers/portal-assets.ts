import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requestIdHeaders } from '../app/http';
import { config } from '../config';
import { BASE_PLACEHOLDER, PORTAL_HEADERS } from '../portal/headers';
import { lambdaHandler } from './middleware';

/*
 * The portal's pages: index.html at /portal and /portal/, its content-hashed scripts and styles under
 * /portal/assets/. Built when the function is bundled (portal/build.ts), read once per environment.
 */
const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', txt: 'text/plain; charset=utf-8' };

let files: { index: string; assets: Map<string, string> } | undefined;

function load() {
  if (!files) {
    const dir = config().portal.assetsDir ?? join(__dirname, 'portal');
    files = {
      index: readFileSync(join(dir, 'index.html'), 'utf8'),
      assets: new Map(readdirSync(join(dir, 'assets')).map((name) => [name, readFileSync(join(dir, 'assets', name), 'utf8')])),
    };
  }
  return files;
}

/**
 * The path the API is reached under: requestContext.path is the path the browser asked for (with an API stage
 * prefix, or a custom domain's base path), `path` the resource path; what precedes it is the prefix.
 */
function basePath(event: APIGatewayProxyEvent): string {
  const full = event.requestContext.path ?? event.path;
  const at = full.lastIndexOf(event.path);
  const prefix = at > 0 ? full.slice(0, at) : '';
  return /^[A-Za-z0-9/_.-]*$/.test(prefix) ? prefix.replace(/\/$/, '') : '';
}

export const handler = lambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>(async (event, context) => {
  const headers = { ...requestIdHeaders(event.requestContext.requestId || context.awsRequestId), ...PORTAL_HEADERS };
  const path = event.path.replace(/\/+$/, '');
  if (event.httpMethod !== 'GET') return { statusCode: 405, headers: { ...headers, allow: 'GET' }, body: '' };
  const { index, assets } = load();
  if (path === '/portal' || path === '/portal/index.html') {
    return {
      statusCode: 200,
      headers: { ...headers, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
      body: index.replaceAll(BASE_PLACEHOLDER, basePath(event)),
    };
  }
  const name = /^\/portal\/assets\/([A-Za-z0-9_.-]+)$/.exec(path)?.[1];
  const body = name === undefined ? undefined : assets.get(name);
  if (name === undefined || body === undefined) {
    return { statusCode: 404, headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' }, body: 'Not found' };
  }
  return {
    statusCode: 200,
    headers: { ...headers, 'content-type': TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream', 'cache-control': 'public, max-age=31536000, immutable' },
    body,
  };
});
