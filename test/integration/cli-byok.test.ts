import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { reloadConfig } from '../../lambdas/config';
import { fingerprintOf } from '../../lambdas/core/byok';
import { openSecret } from '../../lambdas/store/byok-keyring';
import { ddb } from '../../lambdas/store/ddb';
import { createKey, getById } from '../../lambdas/store/keys';
import { tableName } from '../../lambdas/store/tables';
import { useEmbeddedDynamo } from '../support/dynamo';

/* `ni keys byok` in a child process, as an operator runs it: the secret on standard input only. */

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'ni.js');

jest.setTimeout(120_000); // each call spawns node + tsx

let dataDir: string;

function ni(args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^NI_/.test(k)));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...env, NI_DATA_DIR: dataDir } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

const db = useEmbeddedDynamo();

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'ni-cli-byok-'));
  writeFileSync(join(dataDir, 'dynamodb-endpoint'), `${db().endpoint}\n`);
  process.env.NI_BYOK_KEY_FILE = join(dataDir, 'byok-key'); // the file the CLI's key ring creates there
  reloadConfig();
});

afterAll(() => {
  delete process.env.NI_BYOK_KEY_FILE;
  reloadConfig();
  rmSync(dataDir, { recursive: true, force: true });
});

it('sets from standard input, shows masked, rotates and clears; the secret is never printed nor stored', async () => {
  const { record } = await createKey({ name: 'cli byok', tier: 'global' });
  const secret = `sk-proj-${randomBytes(16).toString('hex')}`;
  const set = await ni(['keys', 'byok', 'set', record.id, '--provider', 'openai'], `${secret}\n`);
  expect(set).toMatchObject({ code: 0, stderr: '' });
  expect(set.stdout).toMatch(/credential\s+…[0-9a-f]{4}/);
  expect(set.stdout).toContain(fingerprintOf(secret));
  expect(set.stdout).toMatch(/openai\/gpt-4\.1 → gpt-4\.1 @ us \(US\)/);

  const stored = (await getById(record.id))!.byok!.openai!;
  await expect(openSecret(record.id, 'openai', stored.envelope)).resolves.toBe(secret);
  const items = JSON.stringify((await ddb().send(new ScanCommand({ TableName: tableName('keys') }))).Items);
  expect(items).not.toContain(secret.slice(0, -4));

  const show = await ni(['keys', 'byok', 'show', record.id, '--json']);
  expect(show.code).toBe(0);
  expect(JSON.parse(show.stdout)).toEqual([expect.objectContaining({
    provider: 'openai', masked: `…${secret.slice(-4)}`, fingerprint: fingerprintOf(secret), set_at: stored.set_at, last_used_at: null, allow_fallback: false,
  })]);
  const keyShow = await ni(['keys', 'show', record.id, '--json']);
  expect(JSON.parse(keyShow.stdout).byok).toEqual(['openai']);

  const rotated = `sk-proj-${randomBytes(16).toString('hex')}`;
  expect((await ni(['keys', 'byok', 'set', record.id, '--provider', 'openai', '--allow-fallback'], rotated)).code).toBe(0);
  expect((await getById(record.id))!.byok!.openai).toMatchObject({ fingerprint: fingerprintOf(rotated), allow_fallback: true });

  const clear = await ni(['keys', 'byok', 'clear', record.id]);
  expect(clear).toMatchObject({ code: 0, stdout: expect.stringContaining('Cleared') });
  expect((await getById(record.id))!.byok).toEqual({});
  for (const out of [set, show, keyShow, clear]) expect(out.stdout + out.stderr).not.toContain(secret.slice(0, -4));
});

it('refuses what it cannot take, naming the flag, never echoing the secret', async () => {
  const { record } = await createKey({ name: 'cli byok bad', tier: 'managed_canadian_cloud' });
  const secret = `sk-${randomBytes(16).toString('hex')}`;
  const [noProvider, empty, notUsable, azureNoEndpoint, argv] = await Promise.all([
    ni(['keys', 'byok', 'set', record.id], secret),
    ni(['keys', 'byok', 'set', record.id, '--provider', 'openai'], ''),
    ni(['keys', 'byok', 'set', record.id, '--provider', 'openai'], secret),
    ni(['keys', 'byok', 'set', record.id, '--provider', 'azure_openai', '--deployment', 'openai/gpt-4o=x', '--deployment-type', 'standard'], secret),
    ni(['keys', 'byok', 'set', record.id, '--provider', 'openai', secret]),
  ]);
  expect(noProvider).toMatchObject({ code: 2, stderr: expect.stringContaining('--provider is required') });
  expect(empty).toMatchObject({ code: 2, stderr: expect.stringContaining('no credential on standard input') });
  expect(notUsable).toMatchObject({ code: 1, stderr: expect.stringContaining('could never be used') });
  expect(azureNoEndpoint).toMatchObject({ code: 1, stderr: expect.stringContaining('endpoint') });
  expect(argv).toMatchObject({ code: 2, stderr: expect.stringContaining('takes one key id') }); // a secret in argv is refused
  for (const r of [noProvider, empty, notUsable, azureNoEndpoint, argv]) expect(r.stdout + r.stderr).not.toContain(secret.slice(4, -4));
});
