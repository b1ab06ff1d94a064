import * as fs from 'node:fs';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { STACK_OUTPUTS } from '../../lib/outputs';
import { CORS_HEADERS, GATEWAY_ERRORS, MAX_REQUEST_BODY_BYTES } from '../../lambdas/app/http';
import type { GatewayError } from '../../lambdas/core/errors';
import { catalog } from '../../lambdas/catalog';
import { CUSTODY_DETAIL_TYPE, CUSTODY_EVENT_SOURCE } from '../../lambdas/core/custody';
import { METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambdas/core/metrics';
import { REDELIVERY_WINDOW_MS } from '../../lambdas/core/ledger';
import { TABLES } from '../../lambdas/store/tables';
import { LEDGER_BATCH, WRITER_MAX_RECEIVES } from '../../lib/custody';
import { BEDROCK_INVOKE_ACTIONS, bedrockInvokeGrants } from '../../lib/bedrock';
import { credentialsNeeded } from '../../lambdas/providers/registry';
import { REGION, stackProps } from '../../lib/stack';
import { asList, flatten, policyStatements, removeAssembly, resource, TEST_ACCOUNT, testApp } from './fixture';

const { app, stack } = testApp();
const template = Template.fromStack(stack);
afterAll(() => removeAssembly(app));
const fn = (prefix: string) => resource(template, 'AWS::Lambda::Function', prefix);
const roleOf = (prefix: string) => (fn(prefix).props.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
const GATEWAY = 'ApiGatewayFunction';
const WRITER = 'CustodyLedgerWriterFunction';
const PORTAL = 'ApiPortalApiFunction';
const table = (prefix: string) => resource(template, 'AWS::DynamoDB::Table', prefix);

describe('environment and bundling', () => {
  test('the stack is pinned to ca-central-1 with or without a known account', () => {
    expect(stack.region).toBe(REGION);
    expect(stack.account).toBe(TEST_ACCOUNT);
    expect(stackProps({}).env).toEqual({ region: 'ca-central-1', account: undefined });
  });

  test('the bundling-stacks context skips esbuild: no bundled asset directory is staged', () => {
    const staged = fs.readdirSync(app.outdir).filter((f) => f.startsWith('asset.'));
    expect(staged).toEqual([]);
  });

  test('every function runs nodejs22.x on arm64 with its own log group and the powertools settings', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(7);
    for (const f of functions) {
      expect(f.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
        Environment: { Variables: { POWERTOOLS_SERVICE_NAME: SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE } },
      });
    }
    for (const lg of Object.values(template.findResources('AWS::Logs::LogGroup'))) expect(lg.Properties.RetentionInDays).toBeGreaterThan(0);
  });

  test('the gateway function: 15 minutes, 256 MB, and the environment the handlers read', () => {
    const gateway = fn(GATEWAY).props;
    expect(gateway).toMatchObject({ Timeout: 900, MemorySize: 256 });
    const env = (gateway.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(env).sort()).toEqual(
      [TABLES.usage.env, TABLES.ledger.env, 'NI_EVENT_BUS_NAME', 'NI_CUSTODY_FALLBACK_QUEUE_URL', 'NI_GATEWAY_REGION', 'NI_BYOK_KMS_KEY_ID', 'NI_PROVIDER_SECRET_ARNS', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE'].sort(),
    );
    expect(env.NI_GATEWAY_REGION).toBe(REGION);
    expect(env.NI_EVENT_BUS_NAME).toEqual({ Ref: resource(template, 'AWS::Events::EventBus', 'CustodyBus').id });
    expect(env[TABLES.usage.env]).toEqual({ Ref: table('DataUsageTable').id });
    expect((fn('ApiAuthorizerFunction').props.Environment as { Variables: object }).Variables).toHaveProperty(TABLES.keys.env, { Ref: table('DataKeysTable').id });
    expect((fn(WRITER).props.Environment as { Variables: object }).Variables).toMatchObject({
      [TABLES.ledger.env]: { Ref: table('DataLedgerTable').id },
      NI_LEDGER_SIGNING_KEY_ID: { Ref: resource(template, 'AWS::KMS::Key', 'CustodyLedgerSigningKey').id },
      NI_LEDGER_ANCHOR_BUCKET: { Ref: resource(template, 'AWS::S3::Bucket', 'CustodyCheckpointAnchor').id },
    });
  });
});

describe('REST API', () => {
  const resources = template.findResources('AWS::ApiGateway::Resource');
  const pathOf = (ref: unknown): string => {
    const id = (ref as { Ref?: string }).Ref;
    if (!id) return ''; // the root resource (Fn::GetAtt RestApi.RootResourceId)
    const r = resources[id].Properties as { ParentId: unknown; PathPart: string };
    return `${pathOf(r.ParentId)}/${r.PathPart}`;
  };
  const methods = Object.values(template.findResources('AWS::ApiGateway::Method')).map((m) => ({
    route: `${m.Properties.HttpMethod} ${pathOf(m.Properties.ResourceId) || '/'}`,
    props: m.Properties as Record<string, unknown>,
  }));
  const method = (route: string) => {
    const found = methods.filter((m) => m.route === route);
    expect(found).toHaveLength(1);
    return found[0].props;
  };
  const authorizerId = resource(template, 'AWS::ApiGateway::Authorizer', 'ApiKeyAuthorizer').id;

  test('/v1/{proxy+} streams from the gateway Lambda for 15 minutes', () => {
    const integration = method('ANY /v1/{proxy+}').Integration as Record<string, unknown>;
    expect(integration).toMatchObject({ Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST', ResponseTransferMode: 'STREAM', TimeoutInMillis: 15 * 60 * 1000 });
    expect(flatten(integration.Uri)).toBe(
      `arn:aws:apigateway:${REGION}:lambda:path/2021-11-15/functions/\${${fn(GATEWAY).id}.Arn}/response-streaming-invocations`,
    );
  });

  test('the other routes are buffered Lambda proxies to their own functions', () => {
    expect(flatten((method('GET /api/billing/models').Integration as { Uri: unknown }).Uri)).toMatch(/\/2015-03-31\/functions\/\$\{ApiBillingFunction\w+\.Arn\}\/invocations$/);
    expect(flatten((method('GET /api/usage').Integration as { Uri: unknown }).Uri)).toMatch(/\/2015-03-31\/functions\/\$\{ApiUsageFunction\w+\.Arn\}\/invocations$/);
    expect(method('GET /health').Integration).toMatchObject({ Type: 'MOCK' });
  });

  test('the key authorizer guards /v1 and /api/usage, not the price list, the health check or any preflight', () => {
    expect(method('ANY /v1/{proxy+}')).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: authorizerId } });
    expect(method('GET /api/usage')).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: authorizerId } });
    for (const route of ['GET /api/billing/models', 'GET /health']) {
      expect(method(route).AuthorizationType).toBe('NONE');
      expect(method(route).AuthorizerId).toBeUndefined();
    }
    const preflights = methods.filter((m) => m.route.startsWith('OPTIONS '));
    expect(preflights.map((m) => m.route)).toEqual(expect.arrayContaining(['OPTIONS /v1', 'OPTIONS /v1/{proxy+}', 'OPTIONS /api/usage']));
    for (const { props } of preflights) {
      expect(props.AuthorizationType).toBe('NONE');
      expect(props.AuthorizerId).toBeUndefined();
      expect(props.Integration).toMatchObject({
        Type: 'MOCK',
        IntegrationResponses: [{ ResponseParameters: expect.objectContaining({ 'method.response.header.Access-Control-Allow-Origin': "'*'" }) }],
      });
    }
    expect(methods.filter((m) => m.props.AuthorizationType === 'CUSTOM').map((m) => m.route).sort()).toEqual(['ANY /v1/{proxy+}', 'GET /api/usage']);
  });

  test('API Gateway\'s own answers (every preflight, the health check) carry the request id under both names, readable by browsers', () => {
    const preflights = methods.filter((m) => m.route.startsWith('OPTIONS '));
    // One per resource, the root included, except the portal's: same-origin only, no preflight may pass there.
    const portal = /^\/(api\/)?portal(\/|$)/;
    expect(preflights.map((m) => m.route.slice('OPTIONS '.length)).sort())
      .toEqual(['/', ...Object.keys(resources).map((id) => pathOf({ Ref: id })).filter((p) => !portal.test(p))].sort());
    expect(Object.keys(resources).map((id) => pathOf({ Ref: id })).filter((p) => portal.test(p)).sort()).toEqual(['/api/portal', '/api/portal/{proxy+}', '/portal', '/portal/{proxy+}']);
    for (const props of [...preflights.map((m) => m.props), method('GET /health')]) {
      const integration = props.Integration as { IntegrationResponses: { StatusCode: string; ResponseParameters: Record<string, string> }[] };
      const [response] = integration.IntegrationResponses;
      expect(integration.IntegrationResponses).toHaveLength(1);
      expect(response.ResponseParameters).toMatchObject({
        'method.response.header.X-NI-Request-ID': 'context.requestId',
        'method.response.header.x-request-id': 'context.requestId',
        'method.response.header.Access-Control-Allow-Origin': "'*'",
        'method.response.header.Access-Control-Expose-Headers': `'${CORS_HEADERS['access-control-expose-headers']}'`,
      });
      // A mapped header must be declared on the method response of the same status, or API Gateway drops it.
      const declared = (props.MethodResponses as { StatusCode: string; ResponseParameters: Record<string, boolean> }[]).find((r) => r.StatusCode === response.StatusCode);
      expect(declared?.ResponseParameters).toEqual(Object.fromEntries(Object.keys(response.ResponseParameters).map((k) => [k, true])));
    }
    for (const { props } of preflights) expect((props.MethodResponses as { StatusCode: string }[]).map((r) => r.StatusCode)).toEqual(['204']);
    expect(CORS_HEADERS['access-control-expose-headers']).toMatch(/\bx-request-id\b.*\bx-ni-request-id\b/);
  });

  test('the authorizer is a REQUEST authorizer on the Authorization header, cached for the documented 30 seconds', () => {
    template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.Authorization',
      // README: a revoked key stops within 35 s = API Gateway's 30 s + the authorizer's own 5 s (authorizer test).
      AuthorizerResultTtlInSeconds: 30,
      AuthorizerUri: Match.anyValue(),
    });
    expect(JSON.stringify(resource(template, 'AWS::ApiGateway::Authorizer', 'ApiKeyAuthorizer').props.AuthorizerUri)).toContain(fn('ApiAuthorizerFunction').id);
  });

  test('regional endpoint, throttled stage, error-only execution logs, JSON access logs without client IPs', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { EndpointConfiguration: { Types: ['REGIONAL'] } });
    const stage = resource(template, 'AWS::ApiGateway::Stage', 'ApiRestApiDeploymentStage').props;
    expect(stage).toMatchObject({
      StageName: 'prod',
      MethodSettings: [expect.objectContaining({ HttpMethod: '*', ResourcePath: '/*', ThrottlingRateLimit: expect.any(Number), ThrottlingBurstLimit: expect.any(Number) })],
    });
    expect(stage.MethodSettings).toEqual([expect.objectContaining({ LoggingLevel: 'ERROR', DataTraceEnabled: false })]);
    template.hasResource('AWS::ApiGateway::Account', { DeletionPolicy: 'Retain' });
    const { Format, DestinationArn } = stage.AccessLogSetting as { Format: string; DestinationArn: unknown };
    expect(flatten(DestinationArn)).toContain('${ApiAccessLogs');
    const fields = JSON.parse(Format.replace('$context.error.messageString', '"msg"')) as Record<string, string>;
    expect(fields).toMatchObject({ requestId: '$context.requestId', status: '$context.status', keyId: '$context.authorizer.principalId' });
    expect(Format).not.toMatch(/sourceIp|userAgent|identity/);
  });

  test('gateway responses are OpenAI error bodies with CORS headers and the request id', () => {
    const expected: Record<string, { status?: string; type: string; code: string | null; message?: string }> = {
      UNAUTHORIZED: { status: '401', type: 'invalid_request_error', code: 'invalid_api_key', message: 'Invalid API key' },
      ACCESS_DENIED: { status: '403', type: 'permission_error', code: 'permission_denied' },
      AUTHORIZER_CONFIGURATION_ERROR: { status: '500', type: 'server_error', code: 'authorizer_error' },
      AUTHORIZER_FAILURE: { status: '500', type: 'server_error', code: 'authorizer_error' },
      MISSING_AUTHENTICATION_TOKEN: { status: '404', type: 'invalid_request_error', code: 'unknown_url' },
      THROTTLED: { status: '429', type: 'rate_limit_error', code: 'rate_limit_exceeded' },
      QUOTA_EXCEEDED: { status: '429', type: 'insufficient_quota', code: 'insufficient_quota' },
      REQUEST_TOO_LARGE: { status: '413', type: 'invalid_request_error', code: 'request_too_large' },
      INTEGRATION_TIMEOUT: { status: '504', type: 'server_error', code: 'timeout' },
      DEFAULT_4XX: { type: 'invalid_request_error', code: null, message: '<velocity>' },
      DEFAULT_5XX: { type: 'server_error', code: null, message: '<velocity>' },
    };
    const responses = Object.values(template.findResources('AWS::ApiGateway::GatewayResponse')).map((r) => r.Properties as Record<string, unknown>);
    expect(responses.map((r) => r.ResponseType).sort()).toEqual(Object.keys(expected).sort());
    for (const r of responses) {
      const want = expected[r.ResponseType as string];
      expect(r.StatusCode).toBe(want.status);
      expect(r.ResponseParameters).toMatchObject({
        'gatewayresponse.header.Access-Control-Allow-Origin': "'*'",
        'gatewayresponse.header.Access-Control-Expose-Headers': `'${CORS_HEADERS['access-control-expose-headers']}'`,
        'gatewayresponse.header.X-NI-Request-ID': 'context.requestId',
        'gatewayresponse.header.x-request-id': 'context.requestId',
      });
      const raw = (r.ResponseTemplates as Record<string, string>)['application/json'];
      // Velocity variables are substituted as JSON strings: $context.error.messageString is already quoted.
      const body = JSON.parse(raw.replaceAll('$context.error.messageString', '"<velocity>"')) as { error: Record<string, unknown> };
      expect(Object.keys(body)).toEqual(['error']);
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(body.error).toMatchObject({ type: want.type, code: want.code, param: null, message: want.message ?? expect.any(String) });
      expect(raw).not.toContain('$context.error.message"'); // the unescaped variant would break the JSON
    }
  });

  test('the fixed gateway responses are the errors the local runtime sends in their place', () => {
    const byType = Object.fromEntries(Object.values(template.findResources('AWS::ApiGateway::GatewayResponse')).map((r) => [r.Properties.ResponseType as string, r.Properties as Record<string, unknown>]));
    const cases: [string, GatewayError][] = [
      ['UNAUTHORIZED', GATEWAY_ERRORS.invalidApiKey()],
      ['ACCESS_DENIED', GATEWAY_ERRORS.accessDenied()],
      ['AUTHORIZER_CONFIGURATION_ERROR', GATEWAY_ERRORS.authorizerFailure()],
      ['AUTHORIZER_FAILURE', GATEWAY_ERRORS.authorizerFailure()],
      ['REQUEST_TOO_LARGE', GATEWAY_ERRORS.requestTooLarge()],
    ];
    for (const [type, e] of cases) {
      expect(byType[type].StatusCode).toBe(String(e.status));
      expect(JSON.parse((byType[type].ResponseTemplates as Record<string, string>)['application/json'])).toEqual(e.toBody());
    }
    // Honest about the limit that applies: Lambda's, not API Gateway's 10 MB.
    expect(GATEWAY_ERRORS.requestTooLarge().message).toContain(String(MAX_REQUEST_BODY_BYTES));
  });
});

describe('data', () => {
  test('three on-demand tables with PITR, deletion protection, encryption and the pk/sk schema; TTL on usage', () => {
    const tables = template.findResources('AWS::DynamoDB::Table');
    expect(Object.keys(tables)).toHaveLength(3);
    for (const t of Object.values(tables)) {
      expect(t.DeletionPolicy).toBe('Retain');
      expect(t.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
        SSESpecification: { SSEEnabled: true },
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
      });
    }
    expect(table('DataUsageTable').props.TimeToLiveSpecification).toEqual({ AttributeName: 'expires_at', Enabled: true });
    expect(table('DataKeysTable').props.TimeToLiveSpecification).toBeUndefined();
  });
});

describe('least privilege', () => {
  const statements = policyStatements(template);
  const arnsOf = (s: { statement: { Resource: unknown } }) => asList(s.statement.Resource).map(flatten);

  test('Bedrock: the two invoke actions on exactly the catalog ARNs, only for the gateway, never "*"; a profile\'s models only through the profile', () => {
    const bedrock = statements.filter((s) => asList(s.statement.Action).some((a) => a.startsWith('bedrock:')));
    expect(bedrock).toHaveLength(2);
    const grants = bedrockInvokeGrants(catalog().models.flatMap((m) => m.served), TEST_ACCOUNT);
    for (const s of bedrock) {
      expect(s.roles).toEqual([roleOf(GATEWAY)]);
      expect(asList(s.statement.Action).sort()).toEqual([...BEDROCK_INVOKE_ACTIONS].sort());
      const arns = arnsOf(s);
      expect(arns).not.toContain('*');
      for (const arn of arns) expect(arn).toMatch(/^arn:aws:bedrock:[a-z0-9*-]*:(\d{12})?:(foundation-model|inference-profile)\/[^*]+$/);
    }
    const [direct, viaProfile] = [...bedrock].sort((a, b) => Number('Condition' in a.statement) - Number('Condition' in b.statement));
    expect(arnsOf(direct).sort()).toEqual(grants.direct);
    expect('Condition' in direct.statement).toBe(false);
    // Every wildcard-region foundation model is conditioned on the catalog's inference profiles.
    expect(arnsOf(viaProfile).sort()).toEqual(grants.viaProfile);
    expect(grants.viaProfile.length).toBeGreaterThan(0);
    const condition = (viaProfile.statement as unknown as { Condition: { StringEquals: Record<string, unknown> } }).Condition;
    expect(asList(condition.StringEquals['bedrock:InferenceProfileArn'] as string | string[]).map(flatten).sort()).toEqual(grants.profiles);
    expect(grants.profiles.every((a) => a.includes(':inference-profile/'))).toBe(true);
  });

  test('provider credentials: one secret per credential the catalog needs, named by stage; only the gateway may GetSecretValue, on exactly those; it gets their ARNs, never values', () => {
    // Neither the Azure OpenAI resource nor the sovereign endpoint's base URL is configured here (settings.test.ts
    // gives both): their routes are not served and need no credential.
    expect(credentialsNeeded(catalog(), { endpoints: {}, openaiCompatible: catalog().endpoints })).toEqual(['anthropic', 'openai', 'vertex_ai']);
    expect(credentialsNeeded(catalog(), { endpoints: { azure_openai: 'https://ni-canadaeast.openai.azure.com' }, openaiCompatible: catalog().endpoints }))
      .toEqual(['anthropic', 'azure_openai', 'openai', 'vertex_ai']);
    const secrets = template.findResources('AWS::SecretsManager::Secret');
    const byName = Object.fromEntries(Object.entries(secrets).map(([id, s]) => [s.Properties.Name as string, id]));
    expect(Object.keys(byName).sort()).toEqual(['ni/prod/provider/anthropic', 'ni/prod/provider/openai', 'ni/prod/provider/vertex_ai']);
    for (const s of Object.values(secrets)) {
      expect(s.Properties.SecretString).toBeUndefined(); // a generated placeholder, never a value from the code
      expect(s.DeletionPolicy).toBe('Retain');
    }
    const reads = statements.filter((s) => asList(s.statement.Action).some((a) => a.startsWith('secretsmanager:')));
    expect(reads).toHaveLength(1);
    expect(reads[0].roles).toEqual([roleOf(GATEWAY)]);
    expect(asList(reads[0].statement.Action)).toEqual(['secretsmanager:GetSecretValue']);
    expect(arnsOf(reads[0]).sort()).toEqual(Object.values(byName).map((id) => `\${${id}}`).sort());
    const env = (fn(GATEWAY).props.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(JSON.parse(flatten(env.NI_PROVIDER_SECRET_ARNS))).toEqual({
      anthropic: `\${${byName['ni/prod/provider/anthropic']}}`,
      vertex_ai: `\${${byName['ni/prod/provider/vertex_ai']}}`,
      openai: `\${${byName['ni/prod/provider/openai']}}`,
    });
    expect(env.NI_AZURE_OPENAI_ENDPOINT).toBeUndefined(); // context azureOpenAIEndpoint sets it (settings.test.ts)
  });

  test('the gateway may put events on the custody bus only, and send only to the fallback queue', () => {
    const busId = resource(template, 'AWS::Events::EventBus', 'CustodyBus').id;
    const putEvents = statements.filter((s) => asList(s.statement.Action).includes('events:PutEvents'));
    expect(putEvents).toHaveLength(1);
    expect(putEvents[0].roles).toEqual([roleOf(GATEWAY)]);
    expect(arnsOf(putEvents[0])).toEqual([`\${${busId}.Arn}`]);
    const send = statements.filter((s) => asList(s.statement.Action).includes('sqs:SendMessage') && s.roles.includes(roleOf(GATEWAY)));
    expect(send).toHaveLength(1);
    expect(asList(send[0].statement.Action)).toEqual(['sqs:SendMessage']);
    expect(arnsOf(send[0])).toEqual([`\${${resource(template, 'AWS::SQS::Queue', 'CustodyFallbackQueue').id}.Arn}`]);
  });

  test('only the ledger writer writes the ledger table; the gateway reads it', () => {
    const ledgerArn = `\${${table('DataLedgerTable').id}.Arn}`;
    const onLedger = statements.filter((s) => arnsOf(s).some((a) => a.startsWith(ledgerArn)));
    const writes = onLedger.filter((s) => asList(s.statement.Action).some((a) => /^dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem|TransactWriteItems)$/.test(a)));
    expect(writes.flatMap((s) => s.roles)).toEqual([roleOf(WRITER)]);
    const gatewayOnLedger = onLedger.filter((s) => s.roles.includes(roleOf(GATEWAY)));
    expect(gatewayOnLedger.length).toBeGreaterThan(0);
    for (const s of gatewayOnLedger) for (const a of asList(s.statement.Action)) expect(a).toMatch(/^dynamodb:(BatchGet|Get|Query|Scan|ConditionCheck|Describe)/);
  });

  test('the ledger writer gets exactly what it uses, on an append-only ledger: no DeleteItem, no Scan, no wildcard', () => {
    const ofWriter = statements.filter((s) => s.roles.includes(roleOf(WRITER)));
    const actionsOn = (prefix: string) => ofWriter.filter((s) => asList(s.statement.Action).some((a) => a.startsWith(prefix)));
    const ledgerArn = `\${${table('DataLedgerTable').id}.Arn}`;
    const dynamo = actionsOn('dynamodb:');
    expect(dynamo).toHaveLength(1);
    expect(asList(dynamo[0].statement.Action).sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(arnsOf(dynamo[0])).toEqual([ledgerArn]);
    const anchor = resource(template, 'AWS::S3::Bucket', 'CustodyCheckpointAnchor').id;
    const s3 = actionsOn('s3:');
    expect(s3.map((s) => asList(s.statement.Action))).toEqual([['s3:PutObject']]);
    expect(arnsOf(s3[0])).toEqual([`\${${anchor}.Arn}/checkpoints/*`]);
    const ledgerQueue = resource(template, 'AWS::SQS::Queue', 'CustodyLedgerQueue').id;
    const fallbackQueue = resource(template, 'AWS::SQS::Queue', 'CustodyFallbackQueue').id;
    const sqs = actionsOn('sqs:');
    expect(sqs.flatMap(arnsOf).sort()).toEqual([`\${${fallbackQueue}.Arn}`, `\${${ledgerQueue}.Arn}`].sort());
    for (const s of sqs) expect(asList(s.statement.Action).sort()).toEqual(['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage']);
    const services = new Set(ofWriter.flatMap((s) => asList(s.statement.Action).map((a) => a.split(':')[0])));
    expect([...services].sort()).toEqual(['dynamodb', 'kms', 'logs', 's3', 'sqs']);
  });

  test('the signing key signs for the writer only, with kms:Sign only; the portal reads its public key and signs reports with a key of its own', () => {
    const key = resource(template, 'AWS::KMS::Key', 'CustodyLedgerSigningKey');
    expect(key.props).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    expect(key.res.DeletionPolicy).toBe('Retain');
    const onKey = statements.filter((s) => arnsOf(s).includes(`\${${key.id}.Arn}`));
    expect(onKey.map((s) => [s.roles, asList(s.statement.Action)])).toEqual([[[roleOf(WRITER)], ['kms:Sign']], [[roleOf(PORTAL)], ['kms:GetPublicKey']]]);
    const reports = resource(template, 'AWS::KMS::Key', 'ApiPortalReportSigningKey');
    expect(reports.props).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const onReports = statements.filter((s) => arnsOf(s).includes(`\${${reports.id}.Arn}`));
    expect(onReports.map((s) => [s.roles, asList(s.statement.Action).sort()])).toEqual([[[roleOf(PORTAL)], ['kms:GetPublicKey', 'kms:Sign']]]);
  });

  test('the BYOK key: symmetric, rotated, kept; the gateway may only Decrypt with it, the portal only seal (GenerateDataKey), both only under a BYOK encryption context', () => {
    const key = resource(template, 'AWS::KMS::Key', 'ByokKey');
    expect(key.props).toMatchObject({ EnableKeyRotation: true });
    expect(key.props.KeySpec ?? 'SYMMETRIC_DEFAULT').toBe('SYMMETRIC_DEFAULT');
    expect(key.res.DeletionPolicy).toBe('Retain');
    expect(fn(GATEWAY).props).toMatchObject({ Environment: { Variables: { NI_BYOK_KMS_KEY_ID: { Ref: key.id } } } });
    const onKey = statements.filter((s) => arnsOf(s).includes(`\${${key.id}.Arn}`));
    expect(onKey.map((s) => [s.roles, asList(s.statement.Action)])).toEqual([[[roleOf(GATEWAY)], ['kms:Decrypt']], [[roleOf(PORTAL)], ['kms:GenerateDataKey']]]);
    for (const { statement } of onKey) {
      expect((statement as unknown as { Condition: unknown }).Condition).toEqual({
        'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['ni_key_id', 'provider'] },
        StringEquals: { 'kms:EncryptionContext:provider': ['openai', 'anthropic', 'azure_openai'] },
        StringLike: { 'kms:EncryptionContext:ni_key_id': 'key_*' },
      });
    }
    expect(fn(PORTAL).props).toMatchObject({ Environment: { Variables: { NI_BYOK_KMS_KEY_ID: { Ref: key.id } } } });
    // The key policy is the default one (the account, delegating to IAM): no principal is named on the key itself.
    const keyPolicy = (key.props.KeyPolicy as { Statement: { Principal: unknown }[] }).Statement;
    expect(keyPolicy.map((st) => flatten((st.Principal as { AWS: unknown }).AWS))).toEqual([`arn:aws:iam::${TEST_ACCOUNT}:root`]);
  });

  test('no "*" resource, and no AWS-managed policy except on the account-wide API Gateway logging role', () => {
    for (const s of statements) expect(arnsOf(s)).not.toContain('*');
    const managed = Object.values(template.findResources('AWS::IAM::Role')).filter((r) => r.Properties.ManagedPolicyArns);
    expect(managed).toHaveLength(1);
    expect(managed[0].Properties.AssumeRolePolicyDocument.Statement).toEqual([expect.objectContaining({ Principal: { Service: 'apigateway.amazonaws.com' } })]);
    expect(managed[0].Properties.ManagedPolicyArns.map(flatten)).toEqual(['arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs']);
    expect(managed[0].DeletionPolicy).toBe('Retain');
  });
});

describe('concurrency', () => {
  test('the authorizer and the ledger writer have reserved concurrency, so long streams cannot starve them', () => {
    expect(fn('ApiAuthorizerFunction').props.ReservedConcurrentExecutions).toBe(20);
    expect(fn(WRITER).props.ReservedConcurrentExecutions).toBe(10);
    // The gateway itself is not reserved: it may use what the account has left.
    expect(fn(GATEWAY).props.ReservedConcurrentExecutions).toBeUndefined();
  });
});

describe('custody pipeline', () => {
  const bus = resource(template, 'AWS::Events::EventBus', 'CustodyBus');
  const dlq = resource(template, 'AWS::SQS::Queue', 'CustodyDeadLetterQueue');
  const ledgerQueue = resource(template, 'AWS::SQS::Queue', 'CustodyLedgerQueue');
  const ledgerDlq = resource(template, 'AWS::SQS::Queue', 'CustodyLedgerDeadLetterQueue');
  const fallback = resource(template, 'AWS::SQS::Queue', 'CustodyFallbackQueue');
  const fallbackDlq = resource(template, 'AWS::SQS::Queue', 'CustodyFallbackDeadLetterQueue');

  test('the rule sends custody records to the ledger queue with a retry policy and a dead-letter queue', () => {
    const rule = resource(template, 'AWS::Events::Rule', 'CustodyToLedger').props;
    expect(rule).toMatchObject({
      EventBusName: { Ref: bus.id },
      EventPattern: { source: [CUSTODY_EVENT_SOURCE], 'detail-type': [CUSTODY_DETAIL_TYPE] },
      Targets: [
        {
          Arn: { 'Fn::GetAtt': [ledgerQueue.id, 'Arn'] },
          RetryPolicy: { MaximumEventAgeInSeconds: expect.any(Number), MaximumRetryAttempts: expect.any(Number) },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlq.id, 'Arn'] } },
        },
      ],
    });
    // Only SQS invokes the writer: no asynchronous invocation left to configure.
    expect(fn(WRITER).props.DeadLetterConfig).toBeUndefined();
  });

  test('every queue is encrypted and refuses plain HTTP; the writer\'s queues have their own DLQs', () => {
    for (const q of [dlq, ledgerQueue, ledgerDlq, fallback, fallbackDlq]) {
      expect(q.props.SqsManagedSseEnabled).toBe(true);
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: q.id }],
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
        },
      });
    }
    expect(ledgerQueue.props.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [ledgerDlq.id, 'Arn'] }, maxReceiveCount: WRITER_MAX_RECEIVES });
    expect(fallback.props.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [fallbackDlq.id, 'Arn'] }, maxReceiveCount: WRITER_MAX_RECEIVES });
  });

  test('the writer drains the ledger queue in batches and the fallback queue in small ones, reporting item failures', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [ledgerQueue.id, 'Arn'] },
      FunctionName: { Ref: fn(WRITER).id },
      BatchSize: LEDGER_BATCH.size,
      MaximumBatchingWindowInSeconds: LEDGER_BATCH.window.toSeconds(),
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [fallback.id, 'Arn'] },
      FunctionName: { Ref: fn(WRITER).id },
      BatchSize: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    for (const q of [ledgerQueue, fallback]) {
      expect(q.props.VisibilityTimeout).toBeGreaterThanOrEqual(6 * (fn(WRITER).props.Timeout as number));
      // Every redelivery happens within the window after which verify flags a claimed event missing from the chain.
      expect((q.props.VisibilityTimeout as number) * WRITER_MAX_RECEIVES + LEDGER_BATCH.window.toSeconds()).toBeLessThan(REDELIVERY_WINDOW_MS / 1000);
    }
  });

  test('checkpoints are anchored in a private bucket with Object Lock in compliance mode for the documented 10 years, retained', () => {
    const bucket = resource(template, 'AWS::S3::Bucket', 'CustodyCheckpointAnchor');
    expect(bucket.props).toMatchObject({
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 3650 } } },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
    expect(bucket.res.DeletionPolicy).toBe('Retain');
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket.id },
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });
});

describe('observability', () => {
  const dashboard = resource(template, 'AWS::CloudWatch::Dashboard', 'ObservabilityDashboard').props;
  const body = JSON.parse(flatten(dashboard.DashboardBody)) as { widgets: { properties: { metrics?: unknown[][] } }[] };
  const series = body.widgets.flatMap((w) => w.properties.metrics ?? []);

  test('the dashboard charts every METRIC under the gateway namespace, and nothing METRIC does not define', () => {
    const expressions = series.map((s) => s.find((x) => typeof x === 'object' && x !== null && 'expression' in x) as { expression: string } | undefined).filter((e) => e !== undefined);
    const searched = expressions.flatMap((e) => [...e.expression.matchAll(/\{([^,}]+),([^}]*)\} MetricName="([^"]+)"/g)]).map((m) => ({ ns: m[1], dims: m[2].split(','), name: m[3] }));
    const plain = series.filter((s) => s[0] === METRICS_NAMESPACE).map((s) => s[1]);
    const names = new Set([...searched.filter((s) => s.ns === METRICS_NAMESPACE).map((s) => s.name), ...plain]);
    expect([...names].sort()).toEqual(Object.values(METRIC).sort());
    // Each search names a dimension set the gateway emits (lambdas/telemetry.ts): powertools' `service` plus
    // Model and Tier, plus ErrorType for errors; custody emit failures carry `service` only.
    const dimsOf = (name: string) => searched.filter((s) => s.name === name).map((s) => [...s.dims].sort().join(','));
    for (const name of Object.values(METRIC)) {
      const expected = name === METRIC.errors ? 'ErrorType,Model,Tier,service' : name === METRIC.custodyEmitFailures ? 'service' : 'Model,Tier,service';
      expect({ name, dims: dimsOf(name) }).toEqual({ name, dims: [expected] });
    }
  });

  test('the dashboard also covers API Gateway, every Lambda, every table and the custody queues', () => {
    const awsMetric = (ns: string, name: string) => series.filter((s) => s[0] === ns && s[1] === name);
    for (const m of ['Count', '4XXError', '5XXError', 'Latency']) expect(awsMetric('AWS/ApiGateway', m).length).toBeGreaterThan(0);
    for (const m of ['Invocations', 'Errors', 'Throttles', 'Duration', 'ConcurrentExecutions']) expect(awsMetric('AWS/Lambda', m)).toHaveLength(7);
    for (const m of ['ReadThrottleEvents', 'WriteThrottleEvents']) expect(awsMetric('AWS/DynamoDB', m)).toHaveLength(3);
    expect(awsMetric('AWS/SQS', 'ApproximateNumberOfMessagesVisible')).toHaveLength(5);
    expect(dashboard.DashboardName).toBe(stack.stackName);
  });

  test('alarms: API 5xx rate, the three DLQs, ledger and fallback backlogs, upstream throttling, custody emit failures; all notify the topic', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties as Record<string, unknown>);
    const topic = resource(template, 'AWS::SNS::Topic', 'ObservabilityAlarmTopic').id;
    for (const a of alarms) expect(a.AlarmActions).toEqual([{ Ref: topic }]);
    const byMetric = (name: string) => alarms.filter((a) => a.MetricName === name);
    expect(byMetric('5XXError')).toHaveLength(1);
    const queueOf = (a: Record<string, unknown>) => (a.Dimensions as { Value: { 'Fn::GetAtt': string[] } }[])[0].Value['Fn::GetAtt'][0];
    const depth = byMetric('ApproximateNumberOfMessagesVisible');
    const ledgerQueue = resource(template, 'AWS::SQS::Queue', 'CustodyLedgerQueue').id;
    expect(depth.filter((a) => queueOf(a) === ledgerQueue)).toEqual([expect.objectContaining({ ComparisonOperator: 'GreaterThanThreshold', Threshold: expect.any(Number) })]);
    const dlqAlarms = depth.filter((a) => queueOf(a) !== ledgerQueue);
    expect(dlqAlarms.map(queueOf).sort()).toEqual(
      ['CustodyDeadLetterQueue', 'CustodyLedgerDeadLetterQueue', 'CustodyFallbackDeadLetterQueue'].map((q) => resource(template, 'AWS::SQS::Queue', q).id).sort(),
    );
    for (const a of dlqAlarms) expect(a).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    expect(byMetric('ApproximateAgeOfOldestMessage')).toHaveLength(1);
    // Alarms cannot sum across dimension values: they use the service-only totals the gateway also emits.
    for (const name of [METRIC.upstreamThrottles, METRIC.custodyEmitFailures]) {
      expect(byMetric(name)).toEqual([
        expect.objectContaining({ Namespace: METRICS_NAMESPACE, Statistic: 'Sum', Dimensions: [{ Name: 'service', Value: SERVICE_NAME }] }),
      ]);
    }
    expect(alarms).toHaveLength(8);
  });
});

test('stack outputs are exactly the ones the CLI reads', () => {
  const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
  const expected = ['ApiUrl', 'BaseUrl', 'AlarmTopicArn', 'KeysTableName', 'UsageTableName', 'LedgerTableName', 'EventBusName', 'CustodyFallbackQueueUrl', 'LedgerSigningKeyId', 'LedgerAnchorBucketName', 'ByokKmsKeyId', 'DashboardName', 'PortalUrl', 'PortalUserPoolId'];
  expect(Object.keys(outputs).sort()).toEqual(expected.sort());
  expect(Object.values(STACK_OUTPUTS).sort()).toEqual(expected.sort()); // what `ni --stack` reads
  const restApi = resource(template, 'AWS::ApiGateway::RestApi', 'ApiRestApi').id;
  expect(flatten(outputs.ApiUrl.Value)).toBe(`https://\${${restApi}}.execute-api.${REGION}.\${AWS::URLSuffix}/prod`);
  expect(flatten(outputs.BaseUrl.Value)).toBe(`${flatten(outputs.ApiUrl.Value)}/v1`);
  expect(flatten(outputs.PortalUrl.Value)).toBe(`${flatten(outputs.ApiUrl.Value)}/portal/`);
  expect(outputs.PortalUserPoolId.Value).toEqual({ Ref: resource(template, 'AWS::Cognito::UserPool', 'ApiPortalUsers').id });
  expect(outputs.AlarmTopicArn.Value).toEqual({ Ref: resource(template, 'AWS::SNS::Topic', 'ObservabilityAlarmTopic').id });
  expect(outputs.CustodyFallbackQueueUrl.Value).toEqual({ Ref: resource(template, 'AWS::SQS::Queue', 'CustodyFallbackQueue').id });
  expect(outputs.LedgerSigningKeyId.Value).toEqual({ Ref: resource(template, 'AWS::KMS::Key', 'CustodyLedgerSigningKey').id });
  expect(outputs.LedgerAnchorBucketName.Value).toEqual({ Ref: resource(template, 'AWS::S3::Bucket', 'CustodyCheckpointAnchor').id });
  expect(outputs.ByokKmsKeyId.Value).toEqual({ Ref: resource(template, 'AWS::KMS::Key', 'ByokKey').id });
});

describe('portal', () => {
  const { app: portalApp, stack: portalStack } = testApp({ context: { domainName: 'api.example.ca', certificateArn: `arn:aws:acm:ca-central-1:${TEST_ACCOUNT}:certificate/abc` } });
  const t = Template.fromStack(portalStack);
  afterAll(() => removeAssembly(portalApp));

  test('a Cognito user pool: operator-invited users only, MFA by authenticator app available, strong passwords, kept', () => {
    const pool = resource(t, 'AWS::Cognito::UserPool', 'ApiPortalUsers');
    expect(pool.props).toMatchObject({
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      MfaConfiguration: 'OPTIONAL',
      EnabledMfas: ['SOFTWARE_TOKEN_MFA'],
      Policies: { PasswordPolicy: { MinimumLength: 14, RequireSymbols: true, RequireNumbers: true } },
      UsernameAttributes: ['email'],
    });
    expect(pool.res.DeletionPolicy).toBe('Retain');
  });

  test('a public app client for the authorization code flow (PKCE), returning to the portal on the API and on the custom domain only', () => {
    const client = resource(t, 'AWS::Cognito::UserPoolClient', 'ApiPortalUsersClient').props;
    expect(client).toMatchObject({ AllowedOAuthFlows: ['code'], AllowedOAuthFlowsUserPoolClient: true, AllowedOAuthScopes: ['openid', 'email'], SupportedIdentityProviders: ['COGNITO'] });
    expect(client.GenerateSecret).toBeFalsy();
    expect((client.CallbackURLs as unknown[]).map(flatten)).toEqual([
      `https://\${${resource(t, 'AWS::ApiGateway::RestApi', 'ApiRestApi').id}}.execute-api.${REGION}.\${AWS::URLSuffix}/prod/portal/`,
      'https://api.example.ca/portal/',
    ]);
  });

  test('the portal API verifies tokens of that pool and client; its pages come from their own function', () => {
    const env = (resource(t, 'AWS::Lambda::Function', 'ApiPortalApiFunction').props.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env).toMatchObject({
      NI_PORTAL_USER_POOL_ID: { Ref: resource(t, 'AWS::Cognito::UserPool', 'ApiPortalUsers').id },
      NI_PORTAL_CLIENT_ID: { Ref: resource(t, 'AWS::Cognito::UserPoolClient', 'ApiPortalUsersClient').id },
      NI_REPORT_SIGNING_KEY_ID: { Ref: resource(t, 'AWS::KMS::Key', 'ApiPortalReportSigningKey').id },
    });
    expect(flatten(env.NI_PORTAL_AUTH_DOMAIN)).toBe(`https://\${${resource(t, 'AWS::Cognito::UserPoolDomain', 'ApiPortalUsersSignIn').id}}.auth.${REGION}.amazoncognito.com`);
    expect(Object.keys(env)).not.toContain('NI_PROVIDER_SECRET_ARNS');
  });
});
