import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import builtIn from '../../lambdas/catalog.json';
import { DEFAULT_STAGE, SettingsError } from '../../lib/settings';
import { asList, flatten, policyStatements, removeAssembly, resource, testApp } from './fixture';

/*
 * The deployment settings (CDK context, lib/settings.ts) as `cdk synth -c name=value` passes them: strings.
 * Each case synthesizes the whole app, cdk-nag included.
 */

type Synth = { template: Template; stackName: string; outputs: Record<string, { Value: unknown }> };
const apps: ReturnType<typeof testApp>['app'][] = [];
afterAll(() => apps.forEach(removeAssembly));

function synth(context: Record<string, string> = {}, build: typeof testApp = testApp): Synth {
  const { app, stack } = build({ context });
  apps.push(app);
  expect(new AwsSolutionsChecks().validateScope(app).violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  const template = Template.fromStack(stack);
  return { template, stackName: stack.stackName, outputs: template.toJSON().Outputs };
}

const ZONE_ID = 'Z0123456789ABCDEFGHIJ';
const CERT = 'arn:aws:acm:ca-central-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666';
const TOPIC = 'arn:aws:sns:ca-central-1:123456789012:ops-pager';
const WIF_AUDIENCE = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/ni-aws/providers/ni-gateway';
const gatewayEnv = (t: Template) => (resource(t, 'AWS::Lambda::Function', 'ApiGatewayFunction').props.Environment as { Variables: Record<string, unknown> }).Variables;
const count = (t: Template, type: string) => Object.keys(t.findResources(type)).length;
const secretNames = (t: Template) => Object.values(t.findResources('AWS::SecretsManager::Secret')).map((s) => s.Properties.Name as string);
/** The secrets the gateway may read, as `${LogicalId}`. */
const gatewayReads = (t: Template) => policyStatements(t)
  .filter((s) => asList(s.statement.Action).includes('secretsmanager:GetSecretValue'))
  .flatMap((s) => asList(s.statement.Resource).map(flatten));
const secretId = (t: Template, name: string) => `\${${Object.entries(t.findResources('AWS::SecretsManager::Secret')).find(([, s]) => s.Properties.Name === name)![0]}}`;

describe('without context: the stack as before', () => {
  const { template, stackName, outputs } = synth();

  test('stage prod in the stack NorthernInference; no domain, certificate, mapping, record or subscription', () => {
    expect(stackName).toBe('NorthernInference');
    expect(resource(template, 'AWS::ApiGateway::Stage', 'ApiRestApiDeploymentStage').props).toMatchObject({ StageName: DEFAULT_STAGE });
    for (const type of ['AWS::ApiGateway::DomainName', 'AWS::ApiGateway::BasePathMapping', 'AWS::CertificateManager::Certificate', 'AWS::Route53::RecordSet', 'AWS::SNS::Subscription', 'AWS::Lambda::Alias']) {
      expect([type, count(template, type)]).toEqual([type, 0]);
    }
    expect(outputs.CustomDomainTarget).toBeUndefined();
  });

  test('no provider endpoint or workload identity: the sovereign endpoint is not configured, Vertex AI takes a key', () => {
    const env = gatewayEnv(template);
    for (const name of ['NI_OPENAI_COMPATIBLE_BASE_URLS', 'NI_VERTEX_WORKLOAD_IDENTITY_AUDIENCE', 'NI_VERTEX_PROJECT_ID']) expect(env[name]).toBeUndefined();
    expect(JSON.stringify(env.NI_PROVIDER_SECRET_ARNS)).toContain('vertex_ai');
  });

  test('the sovereign endpoint has no base URL, so it is not served: no secret, no grant, no ARN for it', () => {
    expect(secretNames(template).filter((n) => n.includes('sovereign'))).toEqual([]);
    expect(gatewayReads(template).filter((r) => /sovereign/i.test(r))).toEqual([]);
    expect(Object.keys(JSON.parse(flatten(gatewayEnv(template).NI_PROVIDER_SECRET_ARNS)))).not.toContain('openai_compatible:sovereign-vllm');
  });

  test('no Azure OpenAI resource, so its routes are not served: no secret, no grant, no ARN for Azure OpenAI', () => {
    expect(gatewayEnv(template).NI_AZURE_OPENAI_ENDPOINT).toBeUndefined();
    expect(secretNames(template).filter((n) => n.includes('azure'))).toEqual([]);
    expect(gatewayReads(template).filter((r) => /azure/i.test(r))).toEqual([]);
    expect(Object.keys(JSON.parse(flatten(gatewayEnv(template).NI_PROVIDER_SECRET_ARNS)))).not.toContain('azure_openai');
  });

  test('defaults: 256 MB gateway, 50/100 requests/s throttling, logs kept 90 days', () => {
    expect(resource(template, 'AWS::Lambda::Function', 'ApiGatewayFunction').props.MemorySize).toBe(256);
    const stage = resource(template, 'AWS::ApiGateway::Stage', 'ApiRestApiDeploymentStage').props;
    expect(stage.MethodSettings).toEqual([expect.objectContaining({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 })]);
    for (const lg of Object.values(template.findResources('AWS::Logs::LogGroup'))) expect(lg.Properties.RetentionInDays).toBe(90);
  });
});

describe('custom domain in a Route 53 zone, alarm e-mail, stage and settings', () => {
  const { template, stackName, outputs } = synth({
    stage: 'staging', domainName: 'api.example.ca', hostedZoneName: 'example.ca', hostedZoneId: ZONE_ID, alarmEmail: 'ops@example.ca',
    throttlingRateLimit: '20', throttlingBurstLimit: '40', gatewayMemoryMB: '512', provisionedConcurrency: '2', logRetentionDays: '30', ledgerAnchorRetentionDays: '7',
    azureOpenAIEndpoint: 'https://ni-canadaeast.openai.azure.com',
    openaiCompatibleBaseUrls: '{"sovereign-vllm":"https://gpu.example.ca/v1"}',
    vertexWorkloadIdentityAudience: WIF_AUDIENCE, vertexServiceAccount: 'ni-gateway@ni-prod.iam.gserviceaccount.com', vertexProjectId: 'ni-prod',
  });
  const restApi = resource(template, 'AWS::ApiGateway::RestApi', 'ApiRestApi').id;
  const domain = resource(template, 'AWS::ApiGateway::DomainName', 'CustomDomain');

  test('a stack of its own, beside prod', () => {
    expect(stackName).toBe('NorthernInference-staging');
    expect(resource(template, 'AWS::ApiGateway::Stage', 'ApiRestApiDeploymentStage').props.StageName).toBe('staging');
    expect(flatten(outputs.ApiUrl.Value)).toMatch(/\/staging$/);
  });

  test('a DNS-validated certificate in the zone, a Regional TLS 1.2 domain on it, mapped at its root to the stage', () => {
    const cert = resource(template, 'AWS::CertificateManager::Certificate', 'CustomDomainCertificate');
    expect(cert.props).toMatchObject({
      DomainName: 'api.example.ca',
      ValidationMethod: 'DNS',
      DomainValidationOptions: [{ DomainName: 'api.example.ca', HostedZoneId: ZONE_ID }],
    });
    expect(domain.props).toMatchObject({
      DomainName: 'api.example.ca',
      EndpointConfiguration: { Types: ['REGIONAL'] },
      RegionalCertificateArn: { Ref: cert.id },
      SecurityPolicy: 'TLS_1_2',
    });
    const mapping = resource(template, 'AWS::ApiGateway::BasePathMapping', 'CustomDomain').props;
    expect(mapping).toMatchObject({ DomainName: { Ref: domain.id }, RestApiId: { Ref: restApi }, Stage: { Ref: resource(template, 'AWS::ApiGateway::Stage', 'ApiRestApiDeploymentStage').id } });
    expect(mapping.BasePath).toBeUndefined();
  });

  test('an alias A record for the domain in the zone', () => {
    expect(resource(template, 'AWS::Route53::RecordSet', 'CustomDomainAlias').props).toMatchObject({
      Name: 'api.example.ca.',
      Type: 'A',
      HostedZoneId: ZONE_ID,
      AliasTarget: { DNSName: { 'Fn::GetAtt': [domain.id, 'RegionalDomainName'] }, HostedZoneId: { 'Fn::GetAtt': [domain.id, 'RegionalHostedZoneId'] } },
    });
  });

  test('the e-mail is subscribed to the topic every alarm notifies; the base URL and topic are outputs', () => {
    const topic = resource(template, 'AWS::SNS::Topic', 'ObservabilityAlarmTopic').id;
    expect(resource(template, 'AWS::SNS::Subscription', 'ObservabilityAlarmTopic').props).toMatchObject({ Protocol: 'email', Endpoint: 'ops@example.ca', TopicArn: { Ref: topic } });
    for (const a of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) expect(a.Properties.AlarmActions).toEqual([{ Ref: topic }]);
    expect(outputs.BaseUrl.Value).toBe('https://api.example.ca/v1');
    expect(outputs.AlarmTopicArn.Value).toEqual({ Ref: topic });
    expect(outputs.CustomDomainTarget).toBeUndefined(); // the alias record points the name already
  });

  test('throttling, memory, provisioned concurrency (API Gateway invokes the alias), log and anchor retention as given', () => {
    expect(resource(template, 'AWS::ApiGateway::Stage', 'ApiRestApiDeploymentStage').props.MethodSettings)
      .toEqual([expect.objectContaining({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 })]);
    const gateway = resource(template, 'AWS::Lambda::Function', 'ApiGatewayFunction');
    expect(gateway.props.MemorySize).toBe(512);
    const alias = resource(template, 'AWS::Lambda::Alias', 'ApiGatewayFunctionAlias');
    expect(alias.props).toMatchObject({ Name: 'live', FunctionName: { Ref: gateway.id }, ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 } });
    const v1 = Object.values(template.findResources('AWS::ApiGateway::Method')).find((m) => m.Properties.HttpMethod === 'ANY')!;
    expect(JSON.stringify(v1.Properties.Integration.Uri)).toContain(alias.id);
    for (const lg of Object.values(template.findResources('AWS::Logs::LogGroup'))) expect(lg.Properties.RetentionInDays).toBe(30);
    expect(resource(template, 'AWS::S3::Bucket', 'CustodyCheckpointAnchor').props.ObjectLockConfiguration)
      .toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 } } });
  });

  test("the Azure OpenAI resource's endpoint reaches the gateway, with its secret, the grant to read it and its ARN; provider secrets are named by stage", () => {
    expect(gatewayEnv(template)).toHaveProperty('NI_AZURE_OPENAI_ENDPOINT', 'https://ni-canadaeast.openai.azure.com');
    for (const s of Object.values(template.findResources('AWS::SecretsManager::Secret'))) expect(s.Properties.Name).toMatch(/^ni\/staging\/provider\//);
    const id = secretId(template, 'ni/staging/provider/azure_openai');
    expect(gatewayReads(template)).toContain(id);
    expect(JSON.parse(flatten(gatewayEnv(template).NI_PROVIDER_SECRET_ARNS))).toHaveProperty(['azure_openai'], id);
  });

  test("the sovereign endpoint's base URL and Vertex AI's workload identity reach the gateway; no Vertex key secret is created", () => {
    const env = gatewayEnv(template);
    expect(JSON.parse(env.NI_OPENAI_COMPATIBLE_BASE_URLS as string)).toEqual({ 'sovereign-vllm': 'https://gpu.example.ca/v1' });
    expect(env).toMatchObject({
      NI_VERTEX_WORKLOAD_IDENTITY_AUDIENCE: WIF_AUDIENCE, NI_VERTEX_SERVICE_ACCOUNT: 'ni-gateway@ni-prod.iam.gserviceaccount.com', NI_VERTEX_PROJECT_ID: 'ni-prod',
    });
    const names = secretNames(template);
    expect(names).toContain('ni/staging/provider/openai_compatible/sovereign-vllm');
    expect(gatewayReads(template)).toContain(secretId(template, 'ni/staging/provider/openai_compatible/sovereign-vllm'));
    expect(names).not.toContain('ni/staging/provider/vertex_ai');
    expect(JSON.stringify(env.NI_PROVIDER_SECRET_ARNS)).not.toContain('vertex_ai');
  });
});

describe("a catalog (NI_CATALOG_FILE) giving the sovereign endpoint its base URL", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ni-cat-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const data = structuredClone(builtIn) as { endpoints: Record<string, object> };
  data.endpoints['sovereign-vllm'] = { ...data.endpoints['sovereign-vllm'], base_url: 'https://gpu.example.ca/v1' };
  const file = join(dir, 'catalog.json');
  writeFileSync(file, JSON.stringify(data));
  let template!: Template;
  // The catalog is read once per module registry: this app is built in one of its own.
  jest.isolateModules(() => {
    process.env.NI_CATALOG_FILE = file;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { reloadConfig } = require('../../lambdas/config') as typeof import('../../lambdas/config');
    reloadConfig();
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      ({ template } = synth({}, (require('./fixture') as typeof import('./fixture')).testApp));
    } finally {
      delete process.env.NI_CATALOG_FILE;
      reloadConfig();
    }
  });

  test('its secret is created, the gateway may read it and gets its ARN', () => {
    const id = secretId(template, 'ni/prod/provider/openai_compatible/sovereign-vllm');
    expect(gatewayReads(template)).toContain(id);
    expect(JSON.parse(flatten(gatewayEnv(template).NI_PROVIDER_SECRET_ARNS))).toHaveProperty(['openai_compatible:sovereign-vllm'], id);
    expect(gatewayEnv(template).NI_OPENAI_COMPATIBLE_BASE_URLS).toBeUndefined(); // the catalog's own base URL is used
  });
});

describe('an existing certificate, an existing alarm topic', () => {
  const { template, outputs } = synth({ domainName: 'llm.example.org', certificateArn: CERT, alarmTopicArn: TOPIC });

  test('the domain uses the certificate; no certificate or record is created; the DNS target is an output', () => {
    expect(count(template, 'AWS::CertificateManager::Certificate')).toBe(0);
    expect(count(template, 'AWS::Route53::RecordSet')).toBe(0);
    const domain = resource(template, 'AWS::ApiGateway::DomainName', 'CustomDomain');
    expect(domain.props).toMatchObject({ DomainName: 'llm.example.org', RegionalCertificateArn: CERT });
    expect(outputs.CustomDomainTarget.Value).toEqual({ 'Fn::GetAtt': [domain.id, 'RegionalDomainName'] });
    expect(outputs.BaseUrl.Value).toBe('https://llm.example.org/v1');
  });

  test('alarms notify the given topic; the stack creates none', () => {
    expect(count(template, 'AWS::SNS::Topic')).toBe(0);
    for (const a of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) expect(a.Properties.AlarmActions).toEqual([TOPIC]);
    expect(outputs.AlarmTopicArn.Value).toBe(TOPIC);
  });
});

describe('invalid context stops the synth, naming each value', () => {
  test.each([
    [{ domainName: 'api.example.ca' }, /domainName: needs hostedZoneName .* or certificateArn/],
    [{ domainName: 'api.example.ca', certificateArn: CERT.replace('ca-central-1', 'us-east-1') }, /certificateArn: an ACM certificate ARN in ca-central-1/],
    [{ domainName: 'api.example.ca', hostedZoneName: 'example.org' }, /hostedZoneName: api\.example\.ca is not in example\.org/],
    [{ certificateArn: CERT }, /certificateArn: only applies with domainName/],
    [{ stage: 'Prod_1' }, /stage: lower-case letters/],
    [{ alarmEmail: 'not-an-address' }, /alarmEmail/],
    [{ alarmEmail: 'ops@example.ca', alarmTopicArn: TOPIC }, /alarmEmail: give alarmEmail or alarmTopicArn, not both/],
    [{ gatewayMemoryMB: '64' }, /gatewayMemoryMB/],
    [{ azureOpenAIEndpoint: 'http://ni.openai.azure.com' }, /azureOpenAIEndpoint/],
    [{ openaiCompatibleBaseUrls: '{"sovereign-vllm":"http://gpu.example.ca/v1"}' }, /openaiCompatibleBaseUrls: a JSON object of endpoint names to https base URLs/],
    [{ openaiCompatibleBaseUrls: '{"nowhere":"https://gpu.example.ca/v1"}' }, /openaiCompatibleBaseUrls: not endpoints of the catalog: nowhere/],
    [{ vertexWorkloadIdentityAudience: WIF_AUDIENCE }, /vertexWorkloadIdentityAudience: needs vertexProjectId/],
    [{ vertexServiceAccount: 'sa@p.iam.gserviceaccount.com' }, /vertexServiceAccount: only applies with vertexWorkloadIdentityAudience/],
    [{ logRetentionDays: '45' }, /logRetentionDays: one of 1, 3, 5, 7, 14, 30, 60, 90/],
    [{ ledgerAnchorRetentionDays: '0' }, /ledgerAnchorRetentionDays/],
    [{ throttlingRateLimit: '200', throttlingBurstLimit: '100' }, /throttlingBurstLimit: must be at least throttlingRateLimit/],
  ])('%j', (context, message) => {
    expect(() => testApp({ context })).toThrow(SettingsError);
    expect(() => testApp({ context })).toThrow(message);
  });
});
