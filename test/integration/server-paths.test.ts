import OpenAI, { type APIError } from 'openai';
import { GATEWAY_ERRORS } from '../../lambdas/app/http';
import { TABLES } from '../../lambdas/store/tables';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { reloadConfig } from '../../lambdas/config';

/*
 * The answers the local runtime makes in API Gateway's place — preflights, the health check, unknown routes,
 * authorizer rejections and failures — and the plain Lambda routes carry the request id under both names, as the
 * gateway's own answers do.
 */

let gw: TestGateway;
let openai: OpenAI;
let secret: string;

beforeAll(async () => {
  gw = await startTestGateway();
  ({ openai, secret } = await gw.client({ tier: 'global' }));
});
afterAll(() => gw.close());

/** The request id of a response, after checking it is there under both names and readable by browsers. */
function requestIdOf(res: Response): string {
  const id = res.headers.get('x-request-id');
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  expect(res.headers.get('x-ni-request-id')).toBe(id);
  expect(res.headers.get('access-control-allow-origin')).toBe('*');
  const exposed = res.headers.get('access-control-expose-headers')!.split(',').map((h) => h.trim());
  expect(exposed).toEqual(expect.arrayContaining(['x-request-id', 'x-ni-request-id']));
  return id!;
}

describe('preflights and the health check', () => {
  test.each(['/v1/chat/completions', '/v1/models', '/api/usage', '/api/billing/models', '/health'])('OPTIONS %s: 204 without a key, with a fresh request id', async (path) => {
    const init = { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } };
    const first = await fetch(`${gw.url}${path}`, init);
    const second = await fetch(`${gw.url}${path}`, init);
    expect([first.status, second.status]).toEqual([204, 204]);
    expect(await first.text()).toBe('');
    expect(first.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(first.headers.get('access-control-allow-methods')).toContain('POST');
    expect(requestIdOf(first)).not.toBe(requestIdOf(second));
  });

  test('GET /health: 200 with the request id', async () => {
    const res = await fetch(`${gw.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
    requestIdOf(res);
  });

  test('the price list and usage (plain Lambda proxies) carry the request id too', async () => {
    const prices = await fetch(`${gw.url}/api/billing/models`);
    expect(prices.status).toBe(200);
    requestIdOf(prices);
    // A key of its own: the authorizer caches the keys it has seen, and the store-failure test below needs `secret` unseen.
    const { secret: own } = await gw.client();
    const usage = await fetch(`${gw.url}/api/usage`, { headers: { authorization: `Bearer ${own}` } });
    expect(usage.status).toBe(200);
    requestIdOf(usage);
    const bad = await fetch(`${gw.url}/api/usage?granularity=hourly`, { headers: { authorization: `Bearer ${own}` } });
    expect(bad.status).toBe(400);
    requestIdOf(bad);
  });

  test('an unknown route: 404 in OpenAI shape with the request id', async () => {
    const res = await fetch(`${gw.url}/nowhere`, { headers: { authorization: `Bearer ${secret}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'unknown_url' } });
    requestIdOf(res);
  });
});

describe('the authorizer', () => {
  test('an unknown key: 401 invalid_api_key with the request id, which the openai client surfaces', async () => {
    const res = await fetch(`${gw.url}/v1/models`, { headers: { authorization: 'Bearer ni_live_' + 'x'.repeat(43) } });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual(GATEWAY_ERRORS.invalidApiKey().toBody());
    requestIdOf(res);

    const err = await new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'not-a-key', maxRetries: 0 }).models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as APIError).code).toBe('invalid_api_key');
    expect((err as APIError).requestID).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('a store failure is a 500 authorizer_error, logged without the key, not an invalid key', async () => {
    const captured: string[] = [];
    const streams = [process.stdout, process.stderr];
    const writes = streams.map((s) => s.write);
    // Captured, not printed: the expected error log would read as a failure in the test output.
    for (const s of streams) {
      s.write = ((chunk: string | Uint8Array) => {
        captured.push(String(chunk));
        return true;
      }) as typeof s.write;
    }
    // The key lookup reads the table name per call: a table that does not exist makes the store call fail.
    const table = process.env[TABLES.keys.env];
    process.env[TABLES.keys.env] = 'ni-keys-missing';
    reloadConfig();
    let res: Response;
    let err: unknown;
    try {
      res = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } });
      err = await openai.models.list().catch((e: unknown) => e);
    } finally {
      process.env[TABLES.keys.env] = table;
      reloadConfig();
      streams.forEach((s, i) => (s.write = writes[i]));
    }
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual(GATEWAY_ERRORS.authorizerFailure().toBody());
    const requestId = requestIdOf(res);

    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as APIError).code).toBe('authorizer_error');
    expect((err as APIError).requestID).toMatch(/^[0-9a-f-]{36}$/);

    const logs = captured.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const logged = logs.find((l) => l.message === 'authorizer failed' && l.requestId === requestId);
    expect(logged).toMatchObject({ level: 'ERROR', error: expect.objectContaining({ name: 'ResourceNotFoundException' }) });
    for (const line of captured) {
      expect(line).not.toContain(secret);
      expect(line).not.toContain('Bearer');
    }

    // The same key works once the store does: the 500 was the store, never the key.
    expect((await openai.models.list()).data.length).toBeGreaterThan(0);
  });
});
