import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashSecret, KEY_PREFIX } from '../../lambdas/core/keys';
import { findByHash } from '../../lambdas/store/keys';
import { useEmbeddedDynamo } from '../support/dynamo';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'ni.js');

jest.setTimeout(120_000); // each call spawns node + tsx

let dataDir: string;

/** The child must find the store through NI_DATA_DIR/dynamodb-endpoint only, as after `npm start`. */
function ni(args: string[], dir = dataDir): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^NI_/.test(k)));
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...env, NI_DATA_DIR: dir } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

const db = useEmbeddedDynamo();

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'ni-cli-keys-'));
  writeFileSync(join(dataDir, 'dynamodb-endpoint'), `${db().endpoint}\n`);
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('ni keys', () => {
  it('creates, lists, shows and revokes a key; the secret appears once, at creation', async () => {
    const created = await ni(['keys', 'create', '--name', 't', '--project', 'cli', '--tier', 'global',
      '--allow-tiers', 'managed_canadian_cloud,global', '--max-spend-per-day', '25.00', '--timezone', 'America/Vancouver',
      '--pii-mode', 'block', '--default-max-tokens', '4096', '--json']);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(Object.keys(key).slice(0, 3)).toEqual(['id', 'secret', 'prefix']);
    expect(key).toMatchObject({
      name: 't', project: 'cli', tier: 'global', tier_pinned: false, allowed_tiers: ['managed_canadian_cloud', 'global'],
      max_spend_per_day: 25_000_000, timezone: 'America/Vancouver', pii_mode: 'block', default_max_tokens: 4096, revoked_at: null, byok: null,
    });
    expect(key.secret).toMatch(/^ni_live_[0-9A-Za-z]{43}$/);
    expect(created.stdout.split(key.secret)).toHaveLength(2); // exactly once
    expect((await findByHash(hashSecret(key.secret)))?.id).toBe(key.id);

    const body = key.secret.slice(KEY_PREFIX.length);
    const listJson = await ni(['keys', 'list', '--json']);
    expect(listJson.code).toBe(0);
    expect(JSON.parse(listJson.stdout).find((k: { id: string }) => k.id === key.id))
      .toEqual(Object.fromEntries(Object.entries(key).filter(([k]) => k !== 'secret')));
    const list = await ni(['keys', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+NAME\s+PROJECT\s+PREFIX\s+TIER\s+CAP CAD\/DAY\s+TIMEZONE\s+CREATED\s+REVOKED/);
    expect(list.stdout).toMatch(new RegExp(`${key.id}\\s+t\\s+cli\\s+ni_live_\\w{4}…\\s+global\\s+25\\.00\\s+America/Vancouver`));
    const show = await ni(['keys', 'show', key.id]);
    expect(show.stdout).toContain('managed_canadian_cloud, global');
    for (const out of [listJson, list, show]) expect(out.stdout).not.toContain(body);

    const revoke = await ni(['keys', 'revoke', key.id]);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toMatch(new RegExp(`Revoked ${key.id} .* stops working within \\d+ seconds`));
    const shown = JSON.parse((await ni(['keys', 'show', key.id, '--json'])).stdout);
    expect(shown.revoked_at).toEqual(expect.any(String));
    const again = await ni(['keys', 'revoke', key.id]);
    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('already revoked') });
    expect(JSON.parse((await ni(['keys', 'show', key.id, '--json'])).stdout).revoked_at).toBe(shown.revoked_at);
  });

  it('says in human output that the secret is shown only now, with default settings', async () => {
    const out = await ni(['keys', 'create', '--name', 'human', '--pin-tier']);
    expect(out.code).toBe(0);
    const secrets = out.stdout.match(/ni_live_[0-9A-Za-z]{43}/g);
    expect(secrets).toHaveLength(1);
    expect(out.stdout).toMatch(/shown ONLY NOW/);
    expect(out.stdout).toMatch(/tier\s+managed_canadian_cloud \(pinned\)/);
    expect(out.stdout).toMatch(/allowed tiers\s+canadian_sovereign, managed_canadian_cloud/);
    expect(out.stdout).toMatch(/cap per day\s+unlimited/);
    expect(out.stdout).toMatch(/timezone\s+America\/Toronto/);
  });

  it('rejects invalid calls with exit 2 and a message naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['keys', 'create'], /--name is required/],
      [['keys', 'create', '--name', 'x', '--tier', 'global', '--allow-tiers', 'canadian_sovereign'], /--allow-tiers: .*default tier/],
      [['keys', 'create', '--name', 'x', '--tier', 'offshore'], /--tier:/],
      [['keys', 'create', '--name', 'x', '--timezone', 'Mars/Base'], /--timezone: unknown IANA time zone/],
      [['keys', 'create', '--name', 'x', '--max-spend-per-day', '25,00'], /--max-spend-per-day: expected a CAD amount/],
      [['keys', 'create', '--name', 'x', '--pii-mode', 'redact'], /--pii-mode:/],
      [['keys', 'create', '--name', 'x', '--default-max-tokens', '4k'], /--default-max-tokens: expected a whole number/],
      [['keys', 'create', '--name', 'x', '--default-max-tokens', '0'], /--default-max-tokens:/],
      [['keys', 'create', '--name', 'x', '--bogus'], /Unknown option '--bogus'/],
      [['keys', 'create', '--name', 'x', '--requests-per-minute', 'lots'], /--requests-per-minute: expected a whole number of requests \(or none\)/],
      [['keys', 'create', '--name', 'x', '--max-concurrent', '0'], /--max-concurrent:/],
      [['keys', 'update', 'key_x'], /give --requests-per-minute and\/or --max-concurrent/],
      [['keys', 'update', 'key_x', '--name', 'y'], /--name only applies to ni keys create/],
      [['keys', 'show', 'key_x', '--max-concurrent', '3'], /--max-concurrent only applies to ni keys create and update/],
      [['keys', 'update', '--max-concurrent', '3'], /takes one key id/],
      [['keys', 'list', '--region', 'ca-central-1'], /--region and --stack go together/],
      [['keys', 'show'], /takes one key id/],
      [['keys', 'frobnicate'], /unknown subcommand/],
    ];
    const results = await Promise.all(cases.map(([args]) => ni(args)));
    results.forEach((r, i) => {
      expect({ args: cases[i][0], code: r.code }).toEqual({ args: cases[i][0], code: 2 });
      expect(r.stderr).toMatch(cases[i][1]);
      expect(r.stdout).toBe('');
    });
  });

  it('gives a key the default request limits unless created with others or none, and updates them in place', async () => {
    const plain = await ni(['keys', 'create', '--name', 'limits-default']);
    expect(plain.code).toBe(0);
    // The README's documented defaults.
    expect(plain.stdout).toMatch(/requests\/min\s+300\n/);
    expect(plain.stdout).toMatch(/concurrent\s+10\n/);

    const created = JSON.parse((await ni(['keys', 'create', '--name', 'limits', '--requests-per-minute', 'none', '--max-concurrent', '3', '--json'])).stdout);
    expect(created).toMatchObject({ requests_per_minute: null, max_concurrent_requests: 3 });

    const raised = await ni(['keys', 'update', created.id, '--requests-per-minute', '60']);
    expect(raised.code).toBe(0);
    expect(raised.stdout).toMatch(new RegExp(`Updated ${created.id} \\(limits\\): 60 requests/min, 3 concurrent\\. .*within \\d+ seconds`));
    const lifted = await ni(['keys', 'update', created.id, '--max-concurrent', 'none', '--json']);
    expect(JSON.parse(lifted.stdout)).toMatchObject({ id: created.id, requests_per_minute: 60, max_concurrent_requests: null });
    expect((await findByHash(hashSecret(created.secret)))).toMatchObject({ requests_per_minute: 60, max_concurrent_requests: null, name: 'limits' });

    const missing = await ni(['keys', 'update', 'key_nosuchkey', '--max-concurrent', '2']);
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining('no key with id key_nosuchkey') });
    expect((await ni(['keys', '--help'])).stdout).toMatch(/ni keys update ID .*\n.*\n.*within \d+ seconds/);
  });

  it('fails clearly for an unknown key and when the local gateway is not running', async () => {
    const emptyDir = mkdtempSync(join(tmpdir(), 'ni-cli-empty-'));
    const staleDir = mkdtempSync(join(tmpdir(), 'ni-cli-stale-'));
    writeFileSync(join(staleDir, 'dynamodb-endpoint'), 'http://127.0.0.1:1\n');
    try {
      const [missing, noFile, stale] = await Promise.all([
        ni(['keys', 'show', 'key_nosuchkey']), ni(['keys', 'list'], emptyDir), ni(['keys', 'list'], staleDir),
      ]);
      expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining('no key with id key_nosuchkey') });
      for (const r of [noFile, stale]) {
        expect(r.code).toBe(1);
        expect(r.stderr).toContain('the local gateway is not running: start it with npm start');
      }
    } finally {
      rmSync(emptyDir, { recursive: true, force: true });
      rmSync(staleDir, { recursive: true, force: true });
    }
  });
});

describe('ni accounts', () => {
  it('creates an account, puts a key in it, invites a user with a one-time portal link, and migrates older keys into the default account', async () => {
    const created = await ni(['accounts', 'create', '--name', 'Acme', '--json']);
    expect(created.code).toBe(0);
    const account = JSON.parse(created.stdout) as { id: string; name: string };
    expect(account).toMatchObject({ id: expect.stringMatching(/^acct_/), name: 'Acme' });
    const key = JSON.parse((await ni(['keys', 'create', '--name', 'k', '--account', account.id, '--json'])).stdout) as { account_id: string };
    expect(key.account_id).toBe(account.id);
    const unknown = await ni(['keys', 'create', '--name', 'k', '--account', 'acct_nope']);
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining('no account acct_nope')]);

    const invited = await ni(['accounts', 'invite', '--account', account.id, '--email', 'Dev@Acme.ca']);
    expect(invited.code).toBe(0);
    expect(invited.stdout).toMatch(/\/portal\/#signin=[A-Za-z0-9_-]{43}\n/);
    const list = JSON.parse((await ni(['accounts', 'list', '--json'])).stdout) as { id: string; users: { email: string }[] }[];
    expect(list.find((a) => a.id === account.id)?.users.map((u) => u.email)).toEqual(['dev@acme.ca']);
    expect(list.map((a) => a.id)).toContain('acct_default');

    // Every key is already indexed in its account: nothing to move.
    const migrated = await ni(['accounts', 'migrate']);
    expect([migrated.code, migrated.stdout.trim()]).toEqual([0, 'Every key is already in its account.']);
  });
});
