import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bedrockRoutes, checkRoutes, type RegionListing } from '../../bin/commands/catalog';
import { buildCatalog } from '../../lambdas/core/catalog';
import { catalog } from '../../lambdas/catalog';
import { type BedrockStandIn, startBedrockStandIn } from '../../local/bedrock-standin';
import { PROVIDER_NAMES } from '../../lambdas/providers/names';

const SERVED: ReadonlySet<string> = new Set(PROVIDER_NAMES);

const ROOT = join(__dirname, '..', '..');
const routes = bedrockRoutes(catalog());
const ids = routes.map(({ route }) => route.upstream_id);
const isProfile = (id: string) => /^(us|eu|global|apac)\./.test(id);
const everything = { foundationModels: ids.filter((id) => !isProfile(id)), inferenceProfiles: ids.filter(isProfile) };

let tmp: string;
const standIns: BedrockStandIn[] = [];

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
    expect(report.routes).toHaveLength(routes.length);
    const unverified = report.routes.filter((r: { verified: boolean }) => !r.verified);
    expect(unverified.length).toBeGreaterThan(0);
    for (const r of unverified) expect(r.notes).toContain('marked unverified in the catalog; found upstream');

    const text = await ni(['catalog', 'check', '--endpoint', url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`Checked ${routes.length} Bedrock routes in ca-central-1.`);
    expect(text.stdout).toContain('No problems found.');
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
