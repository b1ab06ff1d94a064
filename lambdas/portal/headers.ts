/**
 * Headers of every portal answer, pages and API alike: a strict Content-Security-Policy (this origin's scripts,
 * styles and API only: no inline script, no third-party origin, no framing), and no CORS headers at all, so a
 * browser lets only the portal's own pages read its API.
 */
export const PORTAL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const PORTAL_HEADERS: Record<string, string> = {
  'content-security-policy': PORTAL_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};

/** Where index.html (portal/build.ts) wants the path the API is reached under (handlers/portal-assets.ts puts it in). */
export const BASE_PLACEHOLDER = '%BASE%';
