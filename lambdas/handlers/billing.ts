import { createHash } from 'node:crypto';
import { CORS_HEADERS } from '../app/http';
import { catalog } from '../catalog';
import { publicCatalog } from '../core/billing';
import { httpHandler } from './middleware';

/**
 * GET /api/billing/models: the public price list (no API key). The catalog is fixed for the life of the
 * process, so the body and its ETag are computed once; clients and CDNs may cache it for five minutes and
 * revalidate with If-None-Match.
 */
let cached: { body: string; etag: string } | undefined;

function priceList() {
  if (!cached) {
    const body = JSON.stringify(publicCatalog(catalog()));
    cached = { body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
  }
  return cached;
}

/** RFC 9110 weak comparison: any listed tag (W/ or not) equal to ours, or `*`. */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}

export const handler = httpHandler(async (req) => {
  const { body, etag } = priceList();
  const headers = {
    'cache-control': 'public, max-age=300',
    etag,
    'access-control-expose-headers': `${CORS_HEADERS['access-control-expose-headers']}, etag`,
  };
  if (matches(req.headers['if-none-match'], etag)) return { status: 304, body: null, headers };
  return { status: 200, body, headers };
});
