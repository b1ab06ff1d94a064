import type { Route } from '../../lambdas/core/catalog';
import type { StreamEvent } from '../../lambdas/core/chat';
import { UpstreamError } from '../../lambdas/providers/provider';
import { createVertexProvider } from '../../lambdas/providers/vertex-ai';
import { REFRESH_MARGIN_MS } from '../../lambdas/providers/vertex-ai/auth';
import { awsSubjectToken, type WorkloadIdentity } from '../../lambdas/providers/vertex-ai/federation';
import { startVertexStandIn, type VertexStandIn } from '../../local/vertex-standin';

/*
 * Workload identity federation against stand-ins of Google's STS and IAM Credentials, which check the signed
 * GetCallerIdentity request as AWS would (signed again with the credentials they were given) and issue tokens
 * the Gemini stand-in accepts. No secret is read.
 */

const AWS = { accessKeyId: 'ASIAGATEWAYROLE', secretAccessKey: 'role-secret', sessionToken: 'role-session-token' };
let standIn: VertexStandIn;
let now = Date.now();
beforeAll(async () => {
  standIn = await startVertexStandIn({ now: () => now, awsCredentials: AWS });
});
afterAll(() => standIn.close());
beforeEach(() => standIn.reset());

const request = { model: 'vertex_ai/gemini-2-5-flash', stream: true, includeUsage: false, system: [], messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Hi' }] }], tools: [] };
const route: Route = { provider: 'vertex_ai', region: 'northamerica-northeast1', upstream_id: 'gemini-2.5-flash', jurisdiction: 'CA', canadian_controlled: false, verified: false };
const noSecrets = { get: async () => { throw new Error('no secret is read with workload identity'); }, has: () => false };

function identity(over: Partial<WorkloadIdentity> = {}): WorkloadIdentity {
  return {
    audience: standIn.workloadIdentityAudience, serviceAccount: standIn.clientEmail, stsEndpoint: standIn.url, iamCredentialsEndpoint: standIn.url,
    awsRegion: 'ca-central-1', awsCredentials: async () => AWS, ...over,
  };
}

async function answer(workloadIdentity: WorkloadIdentity): Promise<string> {
  const provider = createVertexProvider({ endpoint: standIn.url, project: 'ni-prod', workloadIdentity, secrets: noSecrets, now: () => now });
  return text(provider);
}
async function text(provider: ReturnType<typeof createVertexProvider>): Promise<string> {
  const { events } = await provider.stream(route, request, 100);
  let out = '';
  for await (const e of events as AsyncIterable<StreamEvent>) if (e.type === 'text') out += e.delta;
  return out;
}

test('the subject token is a GetCallerIdentity request of the function\'s region, signed over the pool provider', async () => {
  const token = JSON.parse(decodeURIComponent(await awsSubjectToken(identity(), new Date(Date.UTC(2026, 11, 4, 18, 0, 0)))));
  expect(token.url).toBe('https://sts.ca-central-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15');
  expect(token.method).toBe('POST');
  const headers = Object.fromEntries(token.headers.map((h: { key: string; value: string }) => [h.key, h.value]));
  expect(headers).toMatchObject({
    host: 'sts.ca-central-1.amazonaws.com', 'x-amz-date': '20261204T180000Z', 'x-amz-security-token': AWS.sessionToken,
    'x-goog-cloud-target-resource': standIn.workloadIdentityAudience,
  });
  expect(headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=ASIAGATEWAYROLE\/20261204\/ca-central-1\/sts\/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature=[0-9a-f]{64}$/);
  expect(JSON.stringify(token)).not.toContain(AWS.secretAccessKey);
});

test('the role\'s identity is exchanged at STS, the service account impersonated, and the token cached until close to expiry', async () => {
  const provider = createVertexProvider({ endpoint: standIn.url, project: 'ni-prod', workloadIdentity: identity(), secrets: noSecrets, now: () => now });
  expect(await text(provider)).toContain('Vertex AI');
  expect(standIn.federationRequests).toEqual([{ endpoint: 'sts', subject: AWS.accessKeyId, ok: true }, { endpoint: 'iam', subject: standIn.clientEmail, ok: true }]);
  expect(standIn.requests.map((r) => [r.project, r.location, r.authorized])).toEqual([['ni-prod', 'northamerica-northeast1', true]]);

  await text(provider);
  expect(standIn.federationRequests).toHaveLength(2); // the cached token
  now += 3600_000 - REFRESH_MARGIN_MS;
  await text(provider);
  expect(standIn.federationRequests).toHaveLength(4); // exchanged again before it expires
  expect(standIn.requests.every((r) => r.authorized)).toBe(true);
});

test('without a service account the federated token itself is used', async () => {
  expect(await answer(identity({ serviceAccount: undefined }))).toContain('Vertex AI');
  expect(standIn.federationRequests.map((r) => r.endpoint)).toEqual(['sts']);
});

test('a request signed with other credentials, or for another pool provider, is refused: not_enabled, and not cached', async () => {
  const other = identity({ awsCredentials: async () => ({ ...AWS, secretAccessKey: 'not-the-role-secret' }) });
  await expect(answer(other)).rejects.toEqual(expect.objectContaining({ failure: 'not_enabled' }));
  const wrongPool = identity({ audience: standIn.workloadIdentityAudience.replace('/providers/aws', '/providers/other') });
  await expect(answer(wrongPool)).rejects.toBeInstanceOf(UpstreamError);
  expect(standIn.federationRequests.map((r) => r.ok)).toEqual([false, false]);
  expect(standIn.requests).toEqual([]);
});

test('an account the identity may not impersonate is not_enabled', async () => {
  await expect(answer(identity({ serviceAccount: 'someone-else@ni-standin.iam.gserviceaccount.com' }))).rejects.toEqual(expect.objectContaining({ failure: 'not_enabled' }));
  expect(standIn.federationRequests.map((r) => [r.endpoint, r.ok])).toEqual([['sts', true], ['iam', false]]);
});

test('without a project, federation is not enabled', async () => {
  const provider = createVertexProvider({ endpoint: standIn.url, workloadIdentity: identity(), secrets: noSecrets, now: () => now });
  await expect(provider.stream(route, request, 100)).rejects.toEqual(expect.objectContaining({ failure: 'not_enabled' }));
  expect(standIn.federationRequests).toEqual([]);
});
