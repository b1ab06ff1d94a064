import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { CORS_HEADERS, GATEWAY_ERRORS } from '../lambdas/app/http';
import { catalog } from '../lambdas/catalog';
import { withBaseUrls } from '../lambdas/core/catalog';
import type { ErrorType, GatewayError } from '../lambdas/core/errors';
import { AUTHORIZER_CACHE_TTL_SECONDS } from '../lambdas/core/keys';
import { HEALTH_PATH, ROUTES, type RouteSpec } from '../lambdas/routes';
import { TABLES, type TableName } from '../lambdas/store/tables';
import { bedrockInvokeArns, bedrockInvokeStatements } from './bedrock';
import type { ByokKey } from './byok';
import type { Custody } from './custody';
import { HandlerFunction, logRetention } from './function';
import { Portal } from './portal';
import { ProviderSecrets } from './provider-secrets';
import { credentialsNeeded } from '../lambdas/providers/registry';
import type { Settings } from './settings';

export interface ApiProps {
  readonly tables: Record<TableName, dynamodb.ITable>;
  readonly custody: Custody;
  readonly byok: ByokKey;
  readonly settings: Pick<Settings, 'stage' | 'throttlingRateLimit' | 'throttlingBurstLimit' | 'gatewayMemoryMB' | 'provisionedConcurrency' | 'azureOpenAIEndpoint'
    | 'domainName' | 'openaiCompatibleBaseUrls' | 'vertexWorkloadIdentityAudience' | 'vertexServiceAccount' | 'vertexProjectId'>;
}

/** The alias API Gateway invokes when the gateway has provisioned concurrency (it applies to a version). */
export const GATEWAY_ALIAS = 'live';
/** Lambda's and API Gateway's ceiling for a streamed response. */
export const STREAM_TIMEOUT = Duration.minutes(15);
/**
 * Environments kept for the authorizer whatever else runs: long streams could otherwise take the account's whole
 * Lambda concurrency and leave no key checked (the ledger writer has its own, lib/custody.ts).
 */
export const AUTHORIZER_RESERVED_CONCURRENCY = 20;

const CORS_ORIGIN = `'${CORS_HEADERS['access-control-allow-origin']}'`;
const CORS_ALLOW_HEADERS = `'${CORS_HEADERS['access-control-allow-headers']}'`;

/**
 * Headers (name → API Gateway mapping expression) of every response API Gateway makes itself: CORS, and the
 * request id under both names, the same `$context.requestId` the Lambdas echo (the openai client surfaces
 * x-request-id). Browsers may read the headers the Lambdas' responses expose.
 */
const GATEWAY_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': CORS_ORIGIN,
  'Access-Control-Expose-Headers': `'${CORS_HEADERS['access-control-expose-headers']}'`,
  'X-NI-Request-ID': 'context.requestId',
  'x-request-id': 'context.requestId',
};

const PREFLIGHT_HEADERS: Record<string, string> = {
  ...GATEWAY_HEADERS,
  // The same values the local runtime answers preflights with (app/http.ts).
  'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
  'Access-Control-Allow-Methods': `'${CORS_HEADERS['access-control-allow-methods']}'`,
  'Access-Control-Max-Age': `'${CORS_HEADERS['access-control-max-age']}'`,
};

/** Access log fields: ids, route, status and timings. No source IP, user agent or other client data. */
const ACCESS_LOG_FORMAT = `{${Object.entries({
  requestId: '"$context.requestId"',
  requestTime: '"$context.requestTime"',
  method: '"$context.httpMethod"',
  resource: '"$context.resourcePath"',
  path: '"$context.path"',
  status: '"$context.status"',
  responseLength: '"$context.responseLength"',
  latencyMs: '"$context.responseLatency"',
  integrationLatencyMs: '"$context.integrationLatency"',
  keyId: '"$context.authorizer.principalId"',
  errorType: '"$context.error.responseType"',
  error: '$context.error.messageString',
})
  .map(([k, v]) => `"${k}":${v}`)
  .join(',')}}`;

/**
 * A gateway response body in OpenAI's error shape. `message` is JSON: a literal, or
 * `$context.error.messageString` (API Gateway's already-quoted, escaped message).
 */
export function openAiErrorTemplate(messageJson: string, type: ErrorType, code: string | null): string {
  return `{"error":{"message":${messageJson},"type":${JSON.stringify(type)},"param":null,"code":${JSON.stringify(code)}}}`;
}

const CONTEXT_MESSAGE = '$context.error.messageString';
const lit = (message: string) => JSON.stringify(message);

/** A fixed gateway response: the local runtime's error of the same name, status and body alike. */
const fixed = (e: GatewayError) => ({ status: String(e.status), body: openAiErrorTemplate(lit(e.message), e.type, e.code) });

/** Errors API Gateway answers itself (before or instead of the gateway Lambda), in the shape clients expect. */
const GATEWAY_RESPONSES: { type: apigw.ResponseType; status?: string; body: string; headers?: Record<string, string> }[] = [
  // The authorizer threw Error('Unauthorized').
  { type: apigw.ResponseType.UNAUTHORIZED, ...fixed(GATEWAY_ERRORS.invalidApiKey()) },
  { type: apigw.ResponseType.ACCESS_DENIED, ...fixed(GATEWAY_ERRORS.accessDenied()) },
  // The authorizer threw anything else (a store failure): API Gateway reports a configuration error.
  { type: apigw.ResponseType.AUTHORIZER_CONFIGURATION_ERROR, ...fixed(GATEWAY_ERRORS.authorizerFailure()) },
  { type: apigw.ResponseType.AUTHORIZER_FAILURE, ...fixed(GATEWAY_ERRORS.authorizerFailure()) },
  // A path outside the route table.
  { type: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, ...fixed(GATEWAY_ERRORS.unknownUrl()) },
  {
    type: apigw.ResponseType.THROTTLED,
    status: '429',
    body: openAiErrorTemplate(lit('Rate limit reached, please retry shortly'), 'rate_limit_error', 'rate_limit_exceeded'),
    headers: { 'Retry-After': "'1'" },
  },
  {
    type: apigw.ResponseType.QUOTA_EXCEEDED,
    status: '429',
    body: openAiErrorTemplate(lit('You exceeded your current quota'), 'insufficient_quota', 'insufficient_quota'),
  },
  // Bodies past Lambda's invocation payload limit (about 6 MB, under API Gateway's 10 MB) fail at invoke.
  { type: apigw.ResponseType.REQUEST_TOO_LARGE, ...fixed(GATEWAY_ERRORS.requestTooLarge()) },
  {
    type: apigw.ResponseType.INTEGRATION_TIMEOUT,
    status: '504',
    body: openAiErrorTemplate(lit('The request timed out'), 'server_error', 'timeout'),
  },
  // The defaults keep API Gateway's status code and message.
  { type: apigw.ResponseType.DEFAULT_4XX, body: openAiErrorTemplate(CONTEXT_MESSAGE, 'invalid_request_error', null) },
  { type: apigw.ResponseType.DEFAULT_5XX, body: openAiErrorTemplate(CONTEXT_MESSAGE, 'server_error', null) },
];

/** A method answered by API Gateway itself: `status`, `headers` (name → mapping expression) and `body`. */
function addMockMethod(resource: apigw.IResource, httpMethod: string, status: string, headers: Record<string, string>, body?: string): apigw.Method {
  const params = Object.entries(headers).map(([name, value]) => [`method.response.header.${name}`, value] as const);
  return resource.addMethod(
    httpMethod,
    new apigw.MockIntegration({
      requestTemplates: { 'application/json': `{"statusCode": ${status}}` },
      integrationResponses: [{ statusCode: status, responseParameters: Object.fromEntries(params), ...(body && { responseTemplates: { 'application/json': body } }) }],
    }),
    { methodResponses: [{ statusCode: status, responseParameters: Object.fromEntries(params.map(([p]) => [p, true])) }] },
  );
}

/**
 * The public REST API, built from the route table (lambdas/routes.ts): `/v1/{proxy+}` streams from the gateway
 * Lambda behind the key authorizer, `GET /api/usage` (authorized) and `GET /api/billing/models` (public) are plain
 * Lambda proxies.
 */
export class Api extends Construct {
  readonly restApi: apigw.RestApi;
  /** Base URL without a trailing slash: `https://{id}.execute-api.ca-central-1.amazonaws.com/{stage}`; clients add `/v1`. */
  readonly url: string;
  readonly functions: Record<'gateway' | 'authorizer' | 'billing' | 'usage' | 'portal' | 'portal-assets', HandlerFunction>;
  readonly portal: Portal;
  /** The portal's address (on the custom domain when there is one). */
  readonly portalUrl: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { tables, custody, byok, settings } = props;
    // With workload identity federation, Vertex AI needs no stored key.
    const servedBy = { endpoints: { azure_openai: settings.azureOpenAIEndpoint }, openaiCompatible: withBaseUrls(catalog().endpoints, settings.openaiCompatibleBaseUrls) };
    const credentials = credentialsNeeded(catalog(), servedBy)
      .filter((c) => !(c === 'vertex_ai' && settings.vertexWorkloadIdentityAudience));
    const providerSecrets = new ProviderSecrets(this, 'ProviderSecrets', { stage: settings.stage, credentials });

    const gateway = new HandlerFunction(this, 'Gateway', {
      name: 'gateway',
      description: 'OpenAI-compatible /v1 API (streaming)',
      memorySize: settings.gatewayMemoryMB,
      timeout: STREAM_TIMEOUT,
      environment: {
        [TABLES.usage.env]: tables.usage.tableName,
        [TABLES.ledger.env]: tables.ledger.tableName,
        NI_EVENT_BUS_NAME: custody.bus.eventBusName,
        NI_CUSTODY_FALLBACK_QUEUE_URL: custody.fallbackQueue.queueUrl,
        NI_GATEWAY_REGION: stack.region,
        NI_BYOK_KMS_KEY_ID: byok.key.keyId,
        ...providerSecrets.environment,
        ...(settings.azureOpenAIEndpoint ? { NI_AZURE_OPENAI_ENDPOINT: settings.azureOpenAIEndpoint } : {}),
        ...(settings.openaiCompatibleBaseUrls ? { NI_OPENAI_COMPATIBLE_BASE_URLS: JSON.stringify(settings.openaiCompatibleBaseUrls) } : {}),
        ...(settings.vertexProjectId ? { NI_VERTEX_PROJECT_ID: settings.vertexProjectId } : {}),
        ...(settings.vertexWorkloadIdentityAudience ? { NI_VERTEX_WORKLOAD_IDENTITY_AUDIENCE: settings.vertexWorkloadIdentityAudience } : {}),
        ...(settings.vertexServiceAccount ? { NI_VERTEX_SERVICE_ACCOUNT: settings.vertexServiceAccount } : {}),
      },
    });
    providerSecrets.grantRead(gateway.fn);
    tables.usage.grantReadWriteData(gateway.fn);
    tables.ledger.grantReadData(gateway.fn);
    custody.grantEmit(gateway.fn);
    byok.grantOpen(gateway.fn);
    const bedrockRoutes = catalog().models.flatMap((m) => m.served);
    for (const statement of bedrockInvokeStatements(bedrockRoutes, stack.account)) gateway.fn.addToRolePolicy(statement);
    const bedrockArns = bedrockInvokeArns(bedrockRoutes, stack.account);

    const authorizerFn = new HandlerFunction(this, 'Authorizer', {
      name: 'authorizer',
      description: 'API key authorizer',
      memorySize: 512,
      reservedConcurrentExecutions: AUTHORIZER_RESERVED_CONCURRENCY,
      environment: { [TABLES.keys.env]: tables.keys.tableName },
    });
    tables.keys.grantReadData(authorizerFn.fn);

    const billing = new HandlerFunction(this, 'Billing', { name: 'billing', description: 'Public model price list', memorySize: 256 });

    const usage = new HandlerFunction(this, 'Usage', {
      name: 'usage',
      description: "A key's own usage and spend",
      memorySize: 512,
      environment: { [TABLES.usage.env]: tables.usage.tableName },
    });
    tables.usage.grantReadData(usage.fn);
    this.portal = new Portal(this, 'Portal', { stage: settings.stage, tables, custody, byok });
    this.functions = { gateway, authorizer: authorizerFn, billing, usage, portal: this.portal.api, 'portal-assets': this.portal.assets };

    // Provisioned concurrency applies to a version: API Gateway then invokes it through an alias.
    const gatewayTarget = settings.provisionedConcurrency > 0
      ? gateway.fn.addAlias(GATEWAY_ALIAS, { provisionedConcurrentExecutions: settings.provisionedConcurrency })
      : gateway.fn;

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logRetention(this) });
    this.restApi = new apigw.RestApi(this, 'RestApi', {
      restApiName: stack.stackName,
      description: 'Northern Inference: OpenAI-compatible LLM gateway',
      // Regional, not edge-optimized: requests terminate in ca-central-1 without passing through CloudFront.
      endpointTypes: [apigw.EndpointType.REGIONAL],
      // API Gateway writes any CloudWatch log (access logs included) through an account-wide role. Retained:
      // other APIs in the account rely on the same setting.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: settings.stage,
        throttlingRateLimit: settings.throttlingRateLimit,
        throttlingBurstLimit: settings.throttlingBurstLimit,
        metricsEnabled: true,
        // Errors only, never request or response data.
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });
    // The stack's ApiUrl output replaces the default `Endpoint` output (which ends with a slash).
    this.restApi.node.tryRemoveChild('Endpoint');
    // The execution log group API Gateway would otherwise create itself, without retention.
    const executionLogs = new logs.LogGroup(this, 'ExecutionLogs', {
      logGroupName: `API-Gateway-Execution-Logs_${this.restApi.restApiId}/${settings.stage}`,
      retention: logRetention(this),
    });
    this.restApi.deploymentStage.node.addDependency(executionLogs);
    this.url = `https://${this.restApi.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}/${settings.stage}`;

    const authorizer = new apigw.RequestAuthorizer(this, 'KeyAuthorizer', {
      handler: authorizerFn.fn,
      identitySources: [apigw.IdentitySource.header('Authorization')],
      resultsCacheTtl: Duration.seconds(AUTHORIZER_CACHE_TTL_SECONDS),
    });

    const root = this.restApi.root;
    const targets = { gateway: gatewayTarget, billing: billing.fn, usage: usage.fn, portal: this.portal.api.fn, 'portal-assets': this.portal.assets.fn };
    const methods = ROUTES.map((route) => {
      const resource = route.path.split('/').filter(Boolean).reduce<apigw.IResource>((parent, part) => parent.getResource(part) ?? parent.addResource(part), root);
      const integration = new apigw.LambdaIntegration(targets[route.handler],
        route.streaming ? { responseTransferMode: apigw.ResponseTransferMode.STREAM, timeout: STREAM_TIMEOUT } : {});
      return { route, method: resource.addMethod(route.method, integration, route.auth ? { authorizer } : {}) };
    });
    const health = addMockMethod(root.addResource(HEALTH_PATH.slice(1)), 'GET', '200', GATEWAY_HEADERS, '{"status":"ok"}');
    // The CORS preflight on every resource, without authorizer; API Gateway prefers OPTIONS over ANY, so
    // preflights never reach the authorizer or the gateway. Not defaultCorsPreflightOptions: its mock integration
    // sends static headers only, not the request id.
    // Not on the portal's resources: its API is same-origin only, so no preflight may succeed there.
    const sameOrigin = ROUTES.filter((r) => !r.cors).map((r) => r.path.replace(/\/\{proxy\+\}$/, ''));
    const crossOrigin = (path: string) => !sameOrigin.some((p) => path === p || path.startsWith(`${p}/`));
    for (const resource of root.node.findAll().filter((c): c is apigw.ResourceBase => c instanceof apigw.ResourceBase)) {
      if (crossOrigin(resource.path)) addMockMethod(resource, 'OPTIONS', '204', PREFLIGHT_HEADERS);
    }
    // The portal's address, where Cognito may send its users back after signing in.
    this.portalUrl = `${settings.domainName ? `https://${settings.domainName}` : this.url}/portal/`;
    this.portal.addClient([...new Set([`${this.url}/portal/`, this.portalUrl])]);

    for (const r of GATEWAY_RESPONSES) {
      this.restApi.addGatewayResponse(r.type.responseType, {
        type: r.type,
        statusCode: r.status,
        responseHeaders: { ...GATEWAY_HEADERS, 'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS, ...r.headers },
        templates: { 'application/json': r.body },
      });
    }

    const pick = (f: (r: RouteSpec) => boolean) => methods.filter((m) => f(m.route)).map((m) => m.method);
    this.acknowledgeNagFindings(bedrockArns, [...pick((r) => !r.auth && r.cors), health], pick((r) => r.auth), pick((r) => !r.cors));
  }

  private acknowledgeNagFindings(bedrockArns: string[], publicMethods: apigw.Method[], authorizedMethods: apigw.Method[], portalMethods: apigw.Method[]): void {
    for (const method of portalMethods) {
      Validations.of(method).acknowledge(
        { id: 'AwsSolutions-APIG4', reason: "The portal's pages are public; its JSON API verifies the Cognito access token in the function (aws-jwt-verify), as the local runtime's sign-in is checked there too." },
        { id: 'AwsSolutions-COG4', reason: "The portal's JSON API verifies Cognito access tokens itself (aws-jwt-verify: signature, issuer, client, expiry), then maps the user to its account." },
      );
    }
    Validations.of(this.restApi).acknowledge(
      {
        id: 'AwsSolutions-APIG2',
        reason: 'Every route is a Lambda proxy that validates its own input (zod) and answers in OpenAI\'s error shape; API Gateway validation would answer in its own.',
      },
      { id: 'AwsSolutions-APIG3', reason: 'No WAF web ACL: callers are authenticated by API key, the stage is throttled and spend is capped per key.' },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason: 'The account-wide role API Gateway logs through; AWS documents this managed policy for it, and the role is assumable by API Gateway only.',
      },
    );
    // CORS preflights (OPTIONS) are exempt from these rules already.
    for (const method of publicMethods) {
      Validations.of(method).acknowledge(
        { id: 'AwsSolutions-APIG4', reason: 'Public by design: the price list and the health check return no per-key data.' },
        { id: 'AwsSolutions-COG4', reason: 'Public by design: the price list and the health check return no per-key data.' },
      );
    }
    for (const method of authorizedMethods) {
      Validations.of(method).acknowledge({
        id: 'AwsSolutions-COG4',
        reason: 'Clients authenticate with OpenAI-style bearer API keys checked by the Lambda REQUEST authorizer; there are no Cognito users.',
      });
    }
    for (const arn of bedrockArns.filter((a) => a.includes('*'))) {
      Validations.of(this.functions.gateway).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${arn}]`,
        reason: 'A geographic inference profile may serve the model from any region of its geography, and AWS adds regions; the statement\'s bedrock:InferenceProfileArn condition restricts those models to calls through the catalog\'s profiles.',
      });
    }
  }
}
