import { Template } from 'aws-cdk-lib/assertions';
import { HandlerFunction } from '../../lib/function';
import { buildTestPortal } from '../support/portal';
import { HEALTH_PATH, ROUTES } from '../../lambdas/routes';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { removeAssembly, testApp } from './fixture';

/*
 * One route table feeds the stack and the local server: the API the template declares is exactly the table (plus
 * the health check and preflights), and the local server sends each route's requests to the same handler with the
 * same authorization.
 */

const { app, stack } = testApp();
const template = Template.fromStack(stack);
afterAll(() => removeAssembly(app));

type Json = Record<string, any>;

/** Every non-OPTIONS method of the template as `METHOD path auth streaming handler-function`. */
function templateRoutes(): string[] {
  const resources = template.findResources('AWS::ApiGateway::Resource') as Record<string, { Properties: Json }>;
  const pathOf = (ref: unknown): string => {
    if (typeof ref !== 'object' || ref === null || !('Ref' in ref)) return ''; // the API's root resource
    const r = resources[(ref as { Ref: string }).Ref].Properties;
    return `${pathOf(r.ParentId)}/${r.PathPart}`;
  };
  // Each function's logical id → the handler it bundles.
  const handlers = new Map(stack.node.findAll().filter((c): c is HandlerFunction => c instanceof HandlerFunction)
    .map((h) => [stack.getLogicalId(h.fn.node.defaultChild as any), h.name]));
  const handlerOf = (uri: unknown): string => {
    const id = [...handlers.keys()].find((f) => JSON.stringify(uri ?? null).includes(`"${f}"`));
    return id ? handlers.get(id)! : 'mock';
  };
  return Object.values(template.findResources('AWS::ApiGateway::Method') as Record<string, { Properties: Json }>)
    .map((m) => m.Properties)
    .filter((p) => p.HttpMethod !== 'OPTIONS')
    .map((p) => `${p.HttpMethod} ${pathOf(p.ResourceId)} ${p.AuthorizationType === 'CUSTOM'} ${p.Integration.ResponseTransferMode === 'STREAM'} ${handlerOf(p.Integration.Uri)}`)
    .sort();
}

test('the stack declares exactly the route table and the health check', () => {
  const expected = [...ROUTES.map((r) => `${r.method} ${r.path} ${r.auth} ${r.streaming} ${r.handler}`), `GET ${HEALTH_PATH} false false mock`];
  expect(templateRoutes()).toEqual(expected.sort());
});

describe('the local server serves the same table', () => {
  let gw: TestGateway;
  let secret: string;
  beforeAll(async () => {
    await buildTestPortal();
    gw = await startTestGateway();
    ({ secret } = await gw.client({ tier: 'global' }));
  });
  afterAll(() => gw.close());

  const concrete = (path: string) => path.replace('{proxy+}', 'models');

  test.each(ROUTES.filter((r) => r.cors).map((r) => [r.path, r]))('%s: a key where the table asks for one, and the route\'s handler answers', async (_path, route) => {
    const method = route.method === 'ANY' ? 'GET' : route.method;
    const anonymous = await fetch(`${gw.url}${concrete(route.path)}`, { method });
    expect(anonymous.status).toBe(route.auth ? 401 : 200);
    const keyed = await fetch(`${gw.url}${concrete(route.path)}`, { method, headers: { authorization: `Bearer ${secret}` } });
    expect(keyed.status).toBe(200);
    expect(keyed.headers.get('content-type')).toMatch(/application\/json/);
  });

  test('the portal\'s routes: its pages without sign-in, its API behind its own sign-in (not an API key), no CORS', async () => {
    for (const path of ['/portal', '/portal/']) {
      const page = await fetch(`${gw.url}${path}`);
      expect([path, page.status, page.headers.get('content-type')]).toEqual([path, 200, 'text/html; charset=utf-8']);
      const html = await page.text();
      const script = /<script type="module" src="([^"]+)"/.exec(html)?.[1];
      expect(script).toMatch(/^\/portal\/assets\/main-\w+\.js$/);
      // Read to its end: a body left unread (this one is larger than fetch buffers) holds its connection open, and
      // with it the test process, after the server has closed.
      const asset = await fetch(`${gw.url}${script}`);
      expect([asset.status, asset.headers.get('content-type'), (await asset.text()).length > 0]).toEqual([200, 'text/javascript; charset=utf-8', true]);
    }
    expect((await fetch(`${gw.url}/portal/assets/nothing.js`)).status).toBe(404);
    for (const authorization of [undefined, `Bearer ${secret}`]) {
      const api = await fetch(`${gw.url}/api/portal/keys`, { headers: authorization ? { authorization } : {} });
      expect(api.status).toBe(401);
      expect(api.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  test('a path outside the table is a 404 unknown_url without a key check', async () => {
    const res = await fetch(`${gw.url}/v2/models`, { headers: { authorization: 'Bearer nope' } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unknown_url');
  });
});
