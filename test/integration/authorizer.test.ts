import type { APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { generateSecret, hashSecret } from '../../lambdas/core/keys';
import { fromAuthorizerContext } from '../../lambdas/core/principal';
import { createKey, revokeKey } from '../../lambdas/store/keys';
import { useEmbeddedDynamo } from '../support/dynamo';
import { parseConfig, reloadConfig } from '../../lambdas/config';

type AuthorizerModule = typeof import('../../lambdas/handlers/authorizer');

const METHOD_ARN = 'arn:aws:execute-api:ca-central-1:123456789012:abc123/v1/POST/v1/chat/completions';
const STAGE_ARN = 'arn:aws:execute-api:ca-central-1:123456789012:abc123/v1/*/*';

const event = (headers: Record<string, string> | null): APIGatewayRequestAuthorizerEvent => ({
  type: 'REQUEST', methodArn: METHOD_ARN, resource: '/v1/{proxy+}', path: '/v1/chat/completions', httpMethod: 'POST',
  headers, multiValueHeaders: null, pathParameters: null, queryStringParameters: null,
  multiValueQueryStringParameters: null, stageVariables: null,
  requestContext: {} as APIGatewayRequestAuthorizerEvent['requestContext'],
});

/** What Lambda passes the handler: powertools puts its request id and cold start on every log line. */
const LAMBDA_CONTEXT = {
  awsRequestId: 'lambda-request-1', functionName: 'authorizer', functionVersion: '$LATEST', memoryLimitInMB: '512',
  invokedFunctionArn: 'arn:aws:lambda:ca-central-1:123456789012:function:authorizer', getRemainingTimeInMillis: () => 10_000,
} as unknown as Context;

let mod: AuthorizerModule;
let logs: string[] = [];

useEmbeddedDynamo();

beforeAll(async () => {
  // Read when the handler module loads: debug logs on (so the no-secret check sees every line), no cache.
  process.env.NI_LOG_LEVEL = 'DEBUG';
  process.env.NI_KEY_CACHE_TTL_MS = '0';
  reloadConfig();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  mod = require('../../lambdas/handlers/authorizer') as AuthorizerModule;
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    jest.spyOn(stream, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
      logs.push(String(chunk));
      return String(chunk).startsWith('{"level"') || write(chunk, ...rest); // keep the test output quiet
    }) as typeof stream.write);
  }
  for (const method of ['log', 'info', 'debug', 'warn', 'error'] as const) {
    jest.spyOn(console, method).mockImplementation((...args: unknown[]) => { logs.push(args.map(String).join(' ')); });
  }
});

afterAll(() => {
  jest.restoreAllMocks();
});

describe('authorizer', () => {
  it('allows a valid key on the whole stage, with its settings as context', async () => {
    const { record, secret } = await createKey({ name: 'auth-a', tier: 'global', max_spend_per_day: 2_500_000, timezone: 'America/Vancouver', pii_mode: 'block' });
    const result = await mod.handler(event({ Authorization: `Bearer ${secret}` }), LAMBDA_CONTEXT);
    expect(result.principalId).toBe(record.id);
    expect(result.policyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: STAGE_ARN }],
    });
    const expected = {
      keyId: record.id, tier: 'global', tierPinned: false,
      allowedTiers: ['canadian_sovereign', 'managed_canadian_cloud', 'global'], maxSpendPerDay: 2_500_000,
      timezone: 'America/Vancouver', piiMode: 'block', requestsPerMinute: 300, maxConcurrent: 10,
    };
    expect(fromAuthorizerContext(result.context)).toEqual(expected);
    // API Gateway hands the context to the integration with every value as a string.
    const stringified = Object.fromEntries(Object.entries(result.context ?? {}).map(([k, v]) => [k, String(v)]));
    expect(fromAuthorizerContext(stringified)).toEqual(expected);
  });

  it('passes the key\'s own request limits through the context, as strings too', async () => {
    const { secret } = await createKey({ name: 'auth-limits', requests_per_minute: 42, max_concurrent_requests: 3 });
    const result = await mod.handler(event({ Authorization: `Bearer ${secret}` }), LAMBDA_CONTEXT);
    const stringified = Object.fromEntries(Object.entries(result.context ?? {}).map(([k, v]) => [k, String(v)]));
    for (const ctx of [result.context, stringified]) expect(fromAuthorizerContext(ctx)).toMatchObject({ requestsPerMinute: 42, maxConcurrent: 3 });
  });

  it('finds the header whatever its case and tolerates extra spaces', async () => {
    const { record, secret } = await createKey({ name: 'auth-b' });
    for (const headers of [{ authorization: `Bearer ${secret}` }, { AUTHORIZATION: `  bearer    ${secret} ` }] as Record<string, string>[]) {
      expect((await mod.handler(event(headers), LAMBDA_CONTEXT)).principalId).toBe(record.id);
    }
  });

  it('rejects missing, malformed, unknown and revoked keys with Unauthorized', async () => {
    const { record, secret } = await createKey({ name: 'auth-c' });
    await revokeKey(record.id);
    const cases: (Record<string, string> | null)[] = [
      null, {}, { 'Content-Type': 'application/json' }, { Authorization: '' }, { Authorization: secret },
      { Authorization: `Basic ${secret}` }, { Authorization: 'Bearer ni_live_tooshort' },
      { Authorization: `Bearer ${secret}, Bearer ${secret}` }, { Authorization: `Bearer ${generateSecret()}` },
      { Authorization: `Bearer ${secret}` },
    ];
    for (const headers of cases) await expect(mod.handler(event(headers), LAMBDA_CONTEXT)).rejects.toThrow(/^Unauthorized$/);
  });

  it('stops accepting a revoked key once its cache entry expires', async () => {
    let now = 1_000_000;
    const authorize = mod.createAuthorizer({ ttlMs: 1_000, now: () => now });
    const { record, secret } = await createKey({ name: 'auth-d' });
    const request = event({ Authorization: `Bearer ${secret}` });
    expect((await authorize(request)).principalId).toBe(record.id);
    await revokeKey(record.id);
    now += 999; // still cached: the bound is the TTL, not zero
    expect((await authorize(request)).principalId).toBe(record.id);
    now += 1;
    await expect(authorize(request)).rejects.toThrow('Unauthorized');
    // With NI_KEY_CACHE_TTL_MS=0 the module's handler reads the store every time.
    await expect(mod.handler(request, LAMBDA_CONTEXT)).rejects.toThrow('Unauthorized');
  });

  it('with the default settings, a revoked key is refused 5 seconds after its last lookup at the latest (README: 30 s + 5 s)', async () => {
    let now = 2_000_000;
    const authorize = mod.createAuthorizer({ ttlMs: parseConfig({}).keyCacheTtlMs, now: () => now });
    const { record, secret } = await createKey({ name: 'auth-bound' });
    const request = event({ Authorization: `Bearer ${secret}` });
    expect((await authorize(request)).principalId).toBe(record.id);
    await revokeKey(record.id);
    now += 4_999;
    expect((await authorize(request)).principalId).toBe(record.id);
    now += 1;
    await expect(authorize(request)).rejects.toThrow('Unauthorized');
  });

  it('lets a key work as soon as it is created (unknown keys are not cached)', async () => {
    const authorize = mod.createAuthorizer({ ttlMs: 60_000 });
    await expect(authorize(event({ Authorization: `Bearer ${generateSecret()}` }))).rejects.toThrow('Unauthorized');
    const { record, secret } = await createKey({ name: 'auth-e' });
    expect((await authorize(event({ Authorization: `Bearer ${secret}` }))).principalId).toBe(record.id);
  });

  it('fails as an error, not as an invalid key, when the store is unreachable', async () => {
    const { secret } = await createKey({ name: 'auth-f' });
    const table = process.env.NI_KEYS_TABLE;
    process.env.NI_KEYS_TABLE = 'ni-no-such-table';
    reloadConfig();
    try {
      const error = await mod.handler(event({ Authorization: `Bearer ${secret}` }), LAMBDA_CONTEXT).catch((e: Error) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).not.toBe('Unauthorized');
    } finally {
      process.env.NI_KEYS_TABLE = table;
      reloadConfig();
    }
  });

  it('never logs the secret, its hash or the Authorization header', async () => {
    logs = [];
    const { record, secret } = await createKey({ name: 'auth-g' });
    const header = `Bearer ${secret}`;
    await mod.handler(event({ Authorization: header }), LAMBDA_CONTEXT);
    await revokeKey(record.id);
    await mod.handler(event({ Authorization: header }), LAMBDA_CONTEXT).catch(() => undefined);
    const unknown = generateSecret();
    await mod.handler(event({ Authorization: `Bearer ${unknown}` }), LAMBDA_CONTEXT).catch(() => undefined);
    await mod.handler(event({ Authorization: `Bearer ${secret}x` }), LAMBDA_CONTEXT).catch(() => undefined);

    const text = logs.join('\n');
    expect(text).toContain('API key accepted'); // the debug lines were captured
    expect(text).toContain('API key rejected');
    expect(text).toContain(record.id);
    for (const s of [secret, unknown]) {
      expect(text).not.toContain(s.slice(8));
      expect(text).not.toContain(hashSecret(s));
    }
    expect(text).not.toMatch(/bearer|authorization/i);
    // The middleware's Lambda context: every line names the invocation.
    const lines = logs.filter((l) => l.startsWith('{"level"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatchObject({ function_request_id: 'lambda-request-1', cold_start: expect.any(Boolean) });
  });
});
