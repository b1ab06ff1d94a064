import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { reloadConfig } from '../../lambdas/config';
import { buildTestPortal } from '../support/portal';

/*
 * The portal's pages as the Lambda serves them behind API Gateway: under a stage prefix (/prod/portal/) as under
 * a custom domain (/portal/), with the security headers, and with no inline script for the CSP to allow.
 */

type Handler = (e: APIGatewayProxyEvent, c: Context) => Promise<APIGatewayProxyResult>;
let handler: Handler;

beforeAll(async () => {
  await buildTestPortal();
  reloadConfig();
  ({ handler } = (await import('../../lambdas/handlers/portal-assets')) as unknown as { handler: Handler });
});

const event = (path: string, browserPath: string, method = 'GET') => ({
  path, httpMethod: method, headers: {}, queryStringParameters: null, body: null, isBase64Encoded: false,
  requestContext: { requestId: 'req-1', path: browserPath },
}) as unknown as APIGatewayProxyEvent;
const context = { awsRequestId: 'req-1', functionName: 'portal-assets' } as Context;

test.each([
  ['/portal/', '/prod/portal/', '/prod'],
  ['/portal', '/prod/portal', '/prod'],
  ['/portal/', '/portal/', ''],
])('%s asked as %s: the page loads its assets from %s/portal/assets/', async (path, browserPath, base) => {
  const res = await handler(event(path, browserPath), context);
  expect(res.statusCode).toBe(200);
  expect(res.headers).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'x-frame-options': 'DENY', 'x-request-id': 'req-1' });
  expect(String(res.headers!['content-security-policy'])).toMatch(/default-src 'none'; script-src 'self'; style-src 'self';.*frame-ancestors 'none'/);
  expect(res.headers!['access-control-allow-origin']).toBeUndefined();
  const scripts = [...res.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  expect(scripts).toHaveLength(1);
  expect(scripts[0][2]).toBe(''); // no inline script
  const src = /src="([^"]+)"/.exec(scripts[0][1])![1];
  expect(src).toMatch(new RegExp(`^${base}/portal/assets/main-\\w+\\.js$`));
  expect(res.body).not.toMatch(/\sstyle=|<style/); // nor inline style

  const asset = await handler(event(src.slice(base.length), src), context);
  expect(asset.statusCode).toBe(200);
  expect(asset.headers).toMatchObject({ 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=31536000, immutable' });
});

test('anything else is a 404, and only GET is served', async () => {
  expect((await handler(event('/portal/assets/../index.html', '/prod/portal/assets/../index.html'), context)).statusCode).toBe(404);
  expect((await handler(event('/portal/other', '/prod/portal/other'), context)).statusCode).toBe(404);
  expect((await handler(event('/portal/', '/prod/portal/', 'POST'), context)).statusCode).toBe(405);
});
