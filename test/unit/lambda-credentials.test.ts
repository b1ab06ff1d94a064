import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultProvider } from '../../lambdas/lambda-credentials';

/*
 * The Lambda bundles' credential chain (lambdas/lambda-credentials.ts): the environment's credentials, else the
 * container endpoint the environment names, else an error saying what to set.
 */

const VARS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN'];
const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
beforeEach(() => {
  for (const v of VARS) delete process.env[v];
});
afterAll(() => {
  for (const v of VARS) if (saved[v] === undefined) delete process.env[v]; else process.env[v] = saved[v];
});

test('the environment\'s credentials, as Lambda sets them', async () => {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'ASIAROLE', AWS_SECRET_ACCESS_KEY: 'role-secret', AWS_SESSION_TOKEN: 'role-session' });
  await expect(defaultProvider()()).resolves.toMatchObject({ accessKeyId: 'ASIAROLE', secretAccessKey: 'role-secret', sessionToken: 'role-session' });
});

describe('without them, the container endpoint the environment names', () => {
  let server: Server;
  const requests: { url?: string; authorization?: string }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push({ url: req.url, authorization: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        AccessKeyId: 'ASIACONTAINER', SecretAccessKey: 'container-secret', Token: 'container-session',
        Expiration: new Date(Date.now() + 3_600_000).toISOString(),
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('is asked with its authorization token, and its credentials kept until close to their expiry', async () => {
    Object.assign(process.env, {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${(server.address() as AddressInfo).port}/credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: 'container-auth',
    });
    const credentials = defaultProvider();
    await expect(credentials()).resolves.toMatchObject({ accessKeyId: 'ASIACONTAINER', secretAccessKey: 'container-secret', sessionToken: 'container-session' });
    await expect(credentials()).resolves.toMatchObject({ accessKeyId: 'ASIACONTAINER' });
    expect(requests).toEqual([{ url: '/credentials', authorization: 'container-auth' }]);
  });
});

test('neither: the error names what to set', async () => {
  await expect(defaultProvider()()).rejects.toThrow(/AWS_CONTAINER_CREDENTIALS_FULL_URI/);
});
