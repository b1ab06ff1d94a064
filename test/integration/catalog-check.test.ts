import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bedrockRoutes, checkRoutes, type RegionListing } from '../../bin/commands/catalog';
import { buildCatalog } from '../../lambdas/core/catalog';
import { catalog } from '../../lambdas/catalog';
import { type BedrockStandIn, startBedrockStandIn } from '../../local/bedrock-standin';
import { startOpenAIStandIn, type OpenAIStandIn } from '../../local/openai-standin';
import { startVertexStandIn, type VertexStandIn } from '../../local/vertex-standin';
import { PROVIDER_NAMES } from '../../lambdas/providers/names';

const SERVED: ReadonlySet<string> = new Set(PROVIDER_NAMES);

const ROOT = join(__dirname, '..', '..');
const routes = bedrockRoutes(catalog());
const ids = routes.map(({ route }) => route.upstream_id);
const isProfile = (id: string) => /^(us|eu|global|apac)\./.test(id);
const everything = { foundationModels: ids.filter((id) => !isProfile(id)), inferenceProfiles: ids.filter(isProfile) };

let tmp: string;
const standIns: (BedrockStandIn | OpenAIStandIn | VertexStandIn)[] = [];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ni-catalog-'));
});

afterAll(async () => {
  await Promise.all(standIns.map((s) => s.close()));
  rmSync(tmp, { recursive: true, force: true });
});

async function standIn(controlPlane: { foundationModels: string[]; inferenceProfiles: string[] }): Promise<string> {
  const s = await startBedrockStandIn({ controlPlane, region: 'ca-central-1' });
  standIns.push(s);
  return s.url;
}

/**
 * `ni catalog …` in a process of its own (the catalog is loaded once per process, and the exit code is part of
 * the contract), running the command module the `ni` dispatcher loads.
 */
const RUNNER = "require('./bin/commands/catalog.ts').run(process.argv.slice(1)).then((c) => process.exit(c))";
function ni(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-r', 'tsx/cjs', '-e', RUNNER, '--', ...args.slice(1)], {
      cwd: ROOT,
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'ca-central-1', NI_CATALOG_FILE: '', ...env },
    }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }));
  });
}

describe('ni catalog check', () => {
  it('reports a clean catalog, listing the routes still marked unverified', async () => {
    const url = await standIn(everything);
    const json = await ni(['catalog', 'check', '--endpoint', url, '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.problems).toBe(0);
    expect(report.regions).toEqual(['ca-central-1']);
    expect(report.routes).toHaveLength(routes.length); // Bedrock's: the others are not configured here
    const unverified = report.routes.filter((r: { verified: boolean }) => !r.verified);
    expect(unverified.length).toBeGreaterThan(0);
    for (const r of unverified) expect(r.notes).toContain('marked unverified in the catalog; found upstream');

    const text = await ni(['catalog', 'check', '--endpoint', url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`Checked ${routes.length} Bedrock routes in ca-central-1.`);
    expect(text.stdout).toContain('No problems found.');
    // Providers this environment has not configured are skipped, saying what they lack.
    expect(report.skipped).toEqual(expect.arrayContaining([
      { provider: 'azure_openai', routes: 1, reason: expect.stringContaining('NI_AZURE_OPENAI_ENDPOINT') },
      { provider: 'vertex_ai', routes: 2, reason: expect.stringContaining('no vertex_ai credential') },
    ]));
    expect(text.stdout).toContain('Skipped 1 Azure OpenAI routes: no Azure OpenAI resource (NI_AZURE_OPENAI_ENDPOINT');
  }, 60_000);

  it("asks Azure OpenAI for the resource's deployments and Vertex AI (by workload identity federation) for its models", async () => {
    const bedrock = await standIn(everything);
    const azure = await startOpenAIStandIn({ flavor: 'azure', deployments: [{ id: 'gpt-4o', model: 'gpt-4o' }, { id: 'gpt-4.1-mini', model: 'gpt-4.1-mini' }] });
    // The CLI's AWS credentials (test/test) sign the GetCallerIdentity request; the stand-in checks them as AWS would.
    const vertex = await startVertexStandIn({ models: ['gemini-2.5-flash'], awsCredentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    standIns.push(azure, vertex);
    const secrets = join(tmp, 'secrets.json');
    writeFileSync(secrets, JSON.stringify({ azure_openai: 'azure-key' }), { mode: 0o600 });
    const env = {
      NI_PROVIDER_SECRETS_FILE: secrets, NI_AZURE_OPENAI_ENDPOINT: azure.url, NI_VERTEX_ENDPOINT: vertex.url,
      NI_VERTEX_WORKLOAD_IDENTITY_AUDIENCE: vertex.workloadIdentityAudience, NI_VERTEX_SERVICE_ACCOUNT: vertex.clientEmail, NI_VERTEX_PROJECT_ID: 'ni-prod',
      NI_GOOGLE_STS_ENDPOINT: vertex.url, NI_GOOGLE_IAM_CREDENTIALS_ENDPOINT: vertex.url,
    };
    const { code, stdout } = await ni(['catalog', 'check', '--endpoint', bedrock, '--json'], env);
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report.skipped.map((s: { provider: string }) => s.provider)).toEqual([]);
    expect(report.problems).toBe(1);
    const of = (provider: string) => report.routes.filter((r: { provider: string }) => r.provider === provider);
    expect(of('azure_openai')).toEqual([expect.objectContaining({ model: 'openai/gpt-4o', kind: 'deployment', region: 'canadaeast', found: true, problems: [], notes: ['model gpt-4o', 'deployment type not visible with the resource key: give --azure-resource-id to check it', 'marked unverified in the catalog; found upstream'] })]);
    expect(of('vertex_ai')).toEqual([
      expect.objectContaining({ model: 'vertex_ai/gemini-2-5-flash', kind: 'publisher_model', found: true, problems: [] }),
      expect.objectContaining({ model: 'vertex_ai/gemini-2-5-pro', found: false, problems: ['no publisher model gemini-2.5-pro in northamerica-northeast1'] }),
    ]);
    expect(vertex.federationRequests.map((r) => [r.endpoint, r.ok])).toEqual([['sts', true], ['iam', true]]);

    const text = await ni(['catalog', 'check', '--endpoint', bedrock], env);
    expect(text.stdout).toContain('Checked 1 Azure OpenAI routes.');
    expect(text.stdout).toContain('Checked 2 Vertex AI routes.');
    expect(text.stdout).toContain('1 problem(s) found.');
  }, 60_000);

  it("with the resource's ARM id, finds a Global deployment and a resource outside the route's region", async () => {
    const bedrock = await standIn(everything);
    const RESOURCE = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ni/providers/Microsoft.CognitiveServices/accounts/ni-canadaeast';
    const args = (url: string) => ['catalog', 'check', '--endpoint', bedrock, '--json', '--azure-resource-id', RESOURCE, '--azure-management-endpoint', url];
    const check = async (url: string, env: Record<string, string> = { NI_AZURE_MANAGEMENT_TOKEN: 'entra-token' }) => {
      const r = await ni(args(url), { NI_AZURE_OPENAI_ENDPOINT: url, NI_PROVIDER_SECRETS_FILE: join(tmp, 'arm.json'), ...env });
      return { ...r, azure: r.code === 2 ? undefined : JSON.parse(r.stdout).routes.find((x: { provider: string }) => x.provider === 'azure_openai') };
    };
    writeFileSync(join(tmp, 'arm.json'), JSON.stringify({ azure_openai: 'azure-key' }), { mode: 0o600 });
    const regional = await startOpenAIStandIn({ flavor: 'azure' });
    const global = await startOpenAIStandIn({ flavor: 'azure', deployments: [{ id: 'gpt-4o', model: 'gpt-4o', sku: 'GlobalStandard' }], location: 'eastus' });
    standIns.push(regional, global);

    const ok = await check(regional.url);
    expect(ok.code).toBe(0);
    expect(ok.azure).toMatchObject({ found: true, problems: [], notes: ['model gpt-4o 2024-11-20, Standard', 'marked unverified in the catalog; found upstream'] });
    const bad = await check(global.url);
    expect(bad.code).toBe(1);
    expect(bad.azure.problems).toEqual([
      'the resource is in eastus, the route says canadaeast',
      'deployment gpt-4o is GlobalStandard, which may process outside canadaeast: the route needs a Standard (regional) or regional provisioned deployment',
    ]);
    const noToken = await check(regional.url, {});
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('NI_AZURE_MANAGEMENT_TOKEN');
  }, 60_000);

  it('finds a missing or failed Azure deployment', async () => {
    const bedrock = await standIn(everything);
    const azure = await startOpenAIStandIn({ flavor: 'azure', deployments: [{ id: 'gpt-4o', model: 'gpt-4o', status: 'failed' }] });
    standIns.push(azure);
    const secrets = join(tmp, 'azure-only.json');
    writeFileSync(secrets, JSON.stringify({ azure_openai: 'azure-key' }), { mode: 0o600 });
    const failed = await ni(['catalog', 'check', '--endpoint', bedrock, '--json'], { NI_PROVIDER_SECRETS_FILE: secrets, NI_AZURE_OPENAI_ENDPOINT: azure.url });
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout).routes.find((r: { provider: string }) => r.provider === 'azure_openai').problems).toEqual(['deployment gpt-4o is failed, not succeeded']);

    const empty = await startOpenAIStandIn({ flavor: 'azure', deployments: [] });
    standIns.push(empty);
    const missing = await ni(['catalog', 'check', '--endpoint', bedrock, '--json'], { NI_PROVIDER_SECRETS_FILE: secrets, NI_AZURE_OPENAI_ENDPOINT: empty.url });
    expect(JSON.parse(missing.stdout).routes.find((r: { provider: string }) => r.provider === 'azure_openai')).toMatchObject({ found: false, problems: ['no deployment gpt-4o in the Azure OpenAI resource'] });
  }, 60_000);

  it('finds an upstream id that does not exist in the region', async () => {
    const url = await standIn({
      foundationModels: everything.foundationModels.filter((id) => id !== 'meta.llama3-8b-instruct-v1:0'),
      inferenceProfiles: everything.inferenceProfiles.filter((id) => id !== 'global.anthropic.claude-opus-4-6-v1'),
    });
    const { code, stdout } = await ni(['catalog', 'check', '--endpoint', url, '--json']);
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report.problems).toBe(2);
    const bad = report.routes.filter((r: { problems: string[] }) => r.problems.length > 0);
    expect(bad).toEqual([
      expect.objectContaining({ model: 'anthropic/claude-opus-4.6', upstream_id: 'global.anthropic.claude-opus-4-6-v1', found: false, problems: ['no inference profile global.anthropic.claude-opus-4-6-v1 in ca-central-1'] }),
      expect.objectContaining({ model: 'meta/llama-3-8b', found: false, problems: ['no foundation model meta.llama3-8b-instruct-v1:0 in ca-central-1'] }),
    ]);
  }, 60_000);

  it('finds jurisdictions that contradict the upstream id (NI_CATALOG_FILE)', async () => {
    const data = JSON.parse(readFileSync(join(ROOT, 'lambdas', 'catalog.json'), 'utf8'));
    const haiku = data.models.find((m: { id: string }) => m.id === 'anthropic/claude-haiku-4.5');
    haiku.routes[0].jurisdiction = 'CA'; // a us. profile claimed to stay in Canada
    const llama = data.models.find((m: { id: string }) => m.id === 'meta/llama-3-70b');
    llama.routes[0].jurisdiction = 'GLOBAL'; // an in-region model id claimed to be global
    const file = join(tmp, 'contradiction.json');
    writeFileSync(file, JSON.stringify(data));

    const url = await standIn(everything);
    const { code, stdout } = await ni(['catalog', 'check', '--endpoint', url], { NI_CATALOG_FILE: file });
    expect(code).toBe(1);
    expect(stdout).toContain('prefix "us." processes data in US, but the catalog says CA');
    expect(stdout).toContain('a plain model id in ca-central-1 processes data in CA, but the catalog says GLOBAL');
    expect(stdout).toContain('2 problem(s) found.');
  }, 60_000);

  it('refuses a missing subcommand', async () => {
    const { code, stderr } = await ni(['catalog']);
    expect(code).toBe(2);
    expect(stderr).toContain('usage: ni catalog check');
  }, 60_000);
});

describe('checkRoutes', () => {
  const c = buildCatalog({
    version: 1,
    models: [{
      id: 'x/m', display_name: 'M', provider: 'x', context_window: 1000, max_output_tokens: 100,
      capabilities: { streaming: true, tools: false, vision: false },
      pricing: { input_per_mtok: '1', output_per_mtok: '1' },
      routes: [
        { provider: 'bedrock', region: 'ca-central-1', upstream_id: 'x.profile-only-v1', jurisdiction: 'CA', verified: true },
        { provider: 'bedrock', region: 'ca-central-1', upstream_id: 'apac.x.m-v1', jurisdiction: 'GLOBAL' },
        { provider: 'bedrock', region: 'us-east-1', upstream_id: 'x.m-v1', jurisdiction: 'US', verified: true },
        { provider: 'bedrock', region: 'eu-west-1', upstream_id: 'eu.x.m-v1', jurisdiction: 'EU', verified: true },
        { provider: 'vertex_ai', region: 'northamerica-northeast1', upstream_id: 'm', jurisdiction: 'CA' },
      ],
    }],
  }, SERVED);
  const listings = new Map<string, RegionListing>([
    ['ca-central-1', { foundationModels: [{ modelId: 'x.profile-only-v1', onDemand: false, lifecycle: 'ACTIVE' }], inferenceProfiles: ['apac.x.m-v1'] }],
    ['us-east-1', { foundationModels: [{ modelId: 'x.m-v1', onDemand: true, lifecycle: 'LEGACY' }], inferenceProfiles: [] }],
  ]);
  const report = checkRoutes(bedrockRoutes(c), listings);

  it('checks Bedrock routes only', () => {
    expect(report.map((r) => r.upstream_id)).toEqual(['x.profile-only-v1', 'apac.x.m-v1', 'x.m-v1', 'eu.x.m-v1']);
  });

  it('flags a model that needs an inference profile, a foreign profile prefix, and a region never listed', () => {
    expect(report[0].problems).toEqual(['x.profile-only-v1 cannot be invoked on demand in ca-central-1 (it needs an inference profile)']);
    expect(report[1]).toMatchObject({ kind: 'inference_profile', found: true, problems: ['prefix "apac." processes data in APAC, but the catalog says GLOBAL'] });
    expect(report[1].notes).toEqual(['marked unverified in the catalog; found upstream']);
    expect(report[2]).toMatchObject({ found: true, problems: [], notes: ['lifecycle status LEGACY'] });
    expect(report[3]).toMatchObject({ found: false, problems: ['no inference profile eu.x.m-v1 in eu-west-1'] });
  });
});
