import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags, resolveCliEnv, UsageError } from '../../bin/cli-env';
import { resetDdb } from '../../lambdas/store/ddb';
import { listKeys } from '../../lambdas/store/keys';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../local/dynamo';
import { reloadConfig } from '../../lambdas/config';

const OUTPUTS: Record<string, string> = {
  ApiUrl: 'https://abc123.execute-api.ca-central-1.amazonaws.com/v1/',
  KeysTableName: 'NiStack-Keys-1', UsageTableName: 'NiStack-Usage-1', LedgerTableName: 'NiStack-Ledger-1',
  EventBusName: 'ni-custody', CustodyFallbackQueueUrl: 'https://sqs.ca-central-1.amazonaws.com/123456789012/ni-fallback',
  LedgerSigningKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab', DashboardName: 'NorthernInference',
};

const describeStacks = (outputs: Record<string, string>) => `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
<DescribeStacksResult><Stacks><member><StackName>NiStack</StackName><StackStatus>CREATE_COMPLETE</StackStatus>
<CreationTime>2025-01-01T00:00:00Z</CreationTime><Outputs>${Object.entries(outputs)
  .map(([k, v]) => `<member><OutputKey>${k}</OutputKey><OutputValue>${v}</OutputValue></member>`).join('')}
</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>
</DescribeStacksResponse>`;

const notFound = `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>
<Code>ValidationError</Code><Message>Stack with id Nope does not exist</Message></Error><RequestId>r2</RequestId></ErrorResponse>`;

let cfn: Server;
const requests: URLSearchParams[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  // A stand-in CloudFormation endpoint (AWS query protocol), reached through the SDK's own endpoint override.
  cfn = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; }).on('end', () => {
      const params = new URLSearchParams(body);
      requests.push(params);
      const stack = params.get('StackName');
      res.writeHead(stack === 'Nope' ? 400 : 200, { 'content-type': 'text/xml' });
      res.end(stack === 'Nope' ? notFound : describeStacks(stack === 'Partial' ? { ApiUrl: OUTPUTS.ApiUrl } : OUTPUTS));
    });
  });
  await new Promise<void>((resolve) => cfn.listen(0, '127.0.0.1', resolve));
  process.env.AWS_ENDPOINT_URL_CLOUDFORMATION = `http://127.0.0.1:${(cfn.address() as AddressInfo).port}`;
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  reloadConfig();
});

afterAll(async () => {
  process.env = savedEnv;
  resetDdb();
  await new Promise<void>((resolve) => cfn.close(() => resolve()));
});

describe('parseFlags', () => {
  it('parses the command flags plus --region, --stack and --help', () => {
    const { values, positionals } = parseFlags(['create', '--name', 'a', '--json', '--region', 'ca-central-1', '-h'],
      { name: { type: 'string' }, json: { type: 'boolean' } });
    expect(values).toEqual({ name: 'a', json: true, region: 'ca-central-1', help: true });
    expect(positionals).toEqual(['create']);
  });

  it('turns unknown or incomplete flags into UsageErrors', () => {
    expect(() => parseFlags(['--nope'], {})).toThrow(UsageError);
    expect(() => parseFlags(['--name'], { name: { type: 'string' } })).toThrow(/--name/);
  });
});

describe('resolveCliEnv', () => {
  it('reads a deployed stack\'s outputs and points the store modules at them', async () => {
    process.env.NI_DYNAMODB_ENDPOINT = 'http://127.0.0.1:1';
    reloadConfig();
    const env = await resolveCliEnv({ region: 'ca-central-1', stack: 'NiStack' });
    expect(requests.at(-1)?.get('Action')).toBe('DescribeStacks');
    expect(env).toMatchObject({
      mode: 'stack', region: 'ca-central-1', stack: 'NiStack',
      tables: { keys: 'NiStack-Keys-1', usage: 'NiStack-Usage-1', ledger: 'NiStack-Ledger-1' },
      apiUrl: OUTPUTS.ApiUrl, eventBusName: 'ni-custody', custodyFallbackQueueUrl: OUTPUTS.CustodyFallbackQueueUrl,
      ledgerSigningKeyId: OUTPUTS.LedgerSigningKeyId, dashboardName: 'NorthernInference',
    });
    env.apply();
    expect(process.env).toMatchObject({
      AWS_REGION: 'ca-central-1', NI_KEYS_TABLE: 'NiStack-Keys-1', NI_USAGE_TABLE: 'NiStack-Usage-1',
      NI_LEDGER_TABLE: 'NiStack-Ledger-1', NI_EVENT_BUS_NAME: 'ni-custody',
      NI_CUSTODY_FALLBACK_QUEUE_URL: OUTPUTS.CustodyFallbackQueueUrl, NI_LEDGER_SIGNING_KEY_ID: OUTPUTS.LedgerSigningKeyId,
    });
    expect(process.env.NI_DYNAMODB_ENDPOINT).toBeUndefined();
  });

  it('explains a missing stack, a stack without the outputs and a lone --region', async () => {
    await expect(resolveCliEnv({ region: 'ca-central-1', stack: 'Nope' })).rejects.toThrow(/cannot read stack Nope in ca-central-1: .*does not exist/);
    await expect(resolveCliEnv({ region: 'ca-central-1', stack: 'Partial' })).rejects.toThrow(/has no output KeysTableName/);
    await expect(resolveCliEnv({ region: 'ca-central-1' })).rejects.toThrow(UsageError);
  });

  it('uses the running local store from NI_DATA_DIR', async () => {
    const db: EmbeddedDynamo = await startEmbeddedDynamo();
    const dir = mkdtempSync(join(tmpdir(), 'ni-cli-env-'));
    try {
      writeFileSync(join(dir, 'dynamodb-endpoint'), `${db.endpoint}\n`);
      process.env.NI_DATA_DIR = dir;
      reloadConfig();
      const env = await resolveCliEnv({});
      expect(env).toMatchObject({ mode: 'local', dynamodbEndpoint: db.endpoint, tables: db.tables });
      env.apply();
      expect(process.env.NI_DYNAMODB_ENDPOINT).toBe(db.endpoint);
      expect(process.env.NI_KEYS_TABLE).toBe(db.tables.keys);
      expect(await listKeys()).toEqual([]); // the store modules now talk to it
    } finally {
      resetDdb();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
