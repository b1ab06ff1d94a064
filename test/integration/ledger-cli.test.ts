import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../bin/commands/ledger';
import { ddb } from '../../lambdas/store/ddb';
import { appendCustodyEvent, chainEntries, packEntries, resetLedgerCache, storedEntryTexts } from '../../lambdas/store/ledger';
import { custodyEvent } from '../support/custody';
import { useEmbeddedDynamo } from '../support/dynamo';
import { reloadConfig } from '../../lambdas/config';

let dataDir: string;

const db = useEmbeddedDynamo();

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'ni-ledger-cli-'));
  for (const v of ['NI_LEDGER_SIGNING_KEY_FILE', 'NI_LEDGER_SIGNING_KEY_ID', 'NI_CUSTODY_OUTBOX', 'NI_LEDGER_CHECKPOINT_EVERY']) delete process.env[v];
  process.env.NI_DATA_DIR = dataDir;
  reloadConfig();
  writeFileSync(join(dataDir, 'dynamodb-endpoint'), db().endpoint); // what npm start writes
  resetLedgerCache();
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

async function ni(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => { out.push(a.join(' ')); });
  const error = jest.spyOn(console, 'error').mockImplementation((...a) => { err.push(a.join(' ')); });
  try {
    const code = await run(argv);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

it('verify: exit 0 on an intact ledger, 1 naming the first broken link; --json and --key', async () => {
  for (let i = 0; i < 3; i++) await appendCustodyEvent(custodyEvent({ key_id: 'key_cli1' }));
  for (let i = 0; i < 2; i++) await appendCustodyEvent(custodyEvent({ key_id: 'key_cli2' }));
  expect(existsSync(join(dataDir, 'ledger-signing-key.pem'))).toBe(true);

  const ok = await ni('verify');
  expect(ok.code).toBe(0);
  expect(ok.stdout).toContain('2 chain(s), 5 entries, 2 signed checkpoint(s).');
  expect(ok.stdout).toContain(`Checkpoints anchored in ${join(dataDir, 'ledger-anchor')}.`);
  expect(ok.stdout).toContain('Ledger intact.');

  // The second entry's recorded model changed (each append above is a block of one entry).
  const key = { pk: 'chain#key_cli2', sk: 'block#000000000002' };
  const { Item } = await ddb().send(new GetCommand({ TableName: 'ni-ledger', Key: key }));
  const entry = JSON.parse(String(storedEntryTexts(Item!)[0]));
  await ddb().send(new UpdateCommand({
    TableName: 'ni-ledger', Key: key, UpdateExpression: 'SET entries_br = :e',
    ExpressionAttributeValues: { ':e': packEntries([JSON.stringify({ ...entry, event: { ...entry.event, model: 'forged' } })]) },
  }));
  const broken = await ni('verify');
  expect(broken.code).toBe(1);
  expect(broken.stdout).toContain('BROKEN: key key_cli2 seq 2: content does not match its hash');

  const json = await ni('verify', '--json');
  expect(json.code).toBe(1);
  expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, first_problem: { key_id: 'key_cli2', seq: 2 } });

  const one = await ni('verify', '--key', 'key_cli1', '--json');
  expect(one.code).toBe(0);
  expect(JSON.parse(one.stdout).chains.map((c: { key_id: string }) => c.key_id)).toEqual(['key_cli1']);
});

it('redrive: delivers the local outbox and the local dead letters into the ledger', async () => {
  const [event, dead] = [custodyEvent({ key_id: 'key_cli3' }), custodyEvent({ key_id: 'key_cli3' })];
  const outbox = join(dataDir, 'custody-outbox.jsonl');
  const deadLetters = join(dataDir, 'custody-dead-letters.jsonl');
  writeFileSync(outbox, `${JSON.stringify(event)}\n`);
  writeFileSync(deadLetters, `${JSON.stringify(dead)}\n`);
  const r = await ni('redrive', '--json');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ delivered: 2, failed: 0, invalid: 0 });
  for (const file of [outbox, deadLetters]) expect(existsSync(file) ? readFileSync(file, 'utf8') : '').toBe('');
  expect((await ni('verify', '--key', 'key_cli3')).code).toBe(0);
  expect((await chainEntries('key_cli3')).map((e) => e.request_id).sort()).toEqual([event.request_id, dead.request_id].sort());
});

it('usage errors exit 2', async () => {
  expect((await ni()).code).toBe(2);
  expect((await ni('rewrite')).code).toBe(2);
  expect((await ni('redrive', '--key', 'k')).code).toBe(2);
  expect((await ni('verify', '--region', 'ca-central-1')).code).toBe(2);
  expect((await ni('--help')).code).toBe(0);
});
