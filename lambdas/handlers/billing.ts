import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { CORS_HEADERS, requestHeaders } from '../app/http';
import { publicCatalog } from '../core/billing';
import { catalog } from '../catalog';

/**
 * GET /api/billing/models: the public price list (no API key). The catalog is fixed for the life of the
 * process, so the body and its ETag are computed once; clients and CDNs may cache it for five minutes and
 * revalidate with If-None-Match.
 */
let cached: { body: string; etag: string } | undefined;

function response() {
  if (!cached) {
    const body = JSON.stringify(publicCatalog(catalog()));
    cached = { body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
  }
  return cached;
}

function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === name && v !== undefined) return v;
  return undefined;
}

/** RFC 9110 weak comparison: any listed tag (W/ or not) equal to ours, or `*`. */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  const { body, etag } = response();
  const headers = {
    ...requestHeaders(event.requestContext.requestId),
    'cache-control': 'public, max-age=300',
    etag,
    'access-control-expose-headers': `${CORS_HEADERS['access-control-expose-headers']}, etag`,
  };
  if (matches(header(event, 'if-none-match'), etag)) return { statusCode: 304, headers, body: '' };
  return { statusCode: 200, headers: { ...headers, 'content-type': 'application/json' }, body };
}
