import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { assess, modelsToCheck, run } from '../../bin/commands/models';
import { reloadConfig } from '../../lambdas/config';

/*
 * `ni models access` against a Bedrock control plane stand-in speaking the REST-JSON protocol of
 * GetFoundationModelAvailability, ListFoundationModelAgreementOffers and CreateFoundationModelAgreement to the
 * real BedrockClient: a fresh account where no agreement exists yet and Anthropic's use case form is missing.
 */

const OFFER = 'offer-token-1';
let server: Server;
let url: string;
const agreements = new Set<string>();
const calls: string[] = [];
const UNAUTHORIZED = 'anthropic.claude-opus-4-6-v1';

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  reloadConfig();
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
      const path = decodeURIComponent((req.url ?? '').split('?')[0]);
      const json = (status: number, body: object) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      let m: RegExpExecArray | null;
      if ((m = /^\/foundation-model-availability\/(.+)$/.exec(path))) {
        calls.push(`availability ${m[1]}`);
        return json(200, {
          modelId: m[1],
          agreementAvailability: { status: agreements.has(m[1]) ? 'AVAILABLE' : 'NOT_AVAILABLE' },
          authorizationStatus: m[1] === UNAUTHORIZED ? 'NOT_AUTHORIZED' : 'AUTHORIZED',
          entitlementAvailability: 'AVAILABLE',
          regionAvailability: 'AVAILABLE',
        });
      }
      if ((m = /^\/list-foundation-model-agreement-offers\/(.+)$/.exec(path))) {
        calls.push(`offers ${m[1]}`);
        return json(200, { modelId: m[1], offers: [{ offerId: 'o1', offerToken: OFFER, termDetails: {} }] });
      }
      if (path === '/create-foundation-model-agreement') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { modelId: string; offerToken: string };
        calls.push(`agree ${body.modelId}`);
        if (body.offerToken !== OFFER) return json(400, { message: 'bad offer token' });
        agreements.add(body.modelId);
        return json(202, { modelId: body.modelId });
      }
      json(404, { message: `no route ${path}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  reloadConfig();
  await new Promise((resolve) => server.close(resolve));
});

async function ni(args: string[]): Promise<{ code: number; out: { ready: boolean; models: ReturnType<typeof assess>[] } }> {
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    const code = await run(['access', '--region', 'ca-central-1', '--endpoint', url, '--json', ...args]);
    return { code, out: JSON.parse(String(log.mock.calls[0][0])) };
  } finally {
    log.mockRestore();
  }
}

test('every catalog model behind its inference profiles is checked once, by foundation model id', () => {
  const ids = modelsToCheck('ca-central-1').map((m) => m.modelId);
  expect(ids).toEqual(expect.arrayContaining(['anthropic.claude-sonnet-4-5-20250929-v1:0', 'meta.llama3-70b-instruct-v1:0', UNAUTHORIZED]));
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.some((id) => /^(us|global)\./.test(id))).toBe(false);
});

test('a fresh account: nothing ready, and the check alone changes nothing', async () => {
  const { code, out } = await ni([]);
  expect(code).toBe(1);
  expect(out.ready).toBe(false);
  expect(out.models.every((m) => m.agreement === 'NOT_AVAILABLE' && m.actions.some((a) => a.includes('--enable')))).toBe(true);
  expect(calls.filter((c) => !c.startsWith('availability'))).toEqual([]);
});

test('--enable accepts each public offer; what only a person can do (Anthropic use case details) is still reported', async () => {
  const { code, out } = await ni(['--enable']);
  expect(code).toBe(1);
  const byId = new Map(out.models.map((m) => [m.modelId, m]));
  expect(calls.filter((c) => c.startsWith('agree')).length).toBe(out.models.length);
  expect(byId.get('meta.llama3-70b-instruct-v1:0')).toMatchObject({ ready: true, agreement: 'AVAILABLE', actions: ['accepted the public offer'] });
  expect(byId.get(UNAUTHORIZED)).toMatchObject({ ready: false, agreement: 'AVAILABLE' });
  expect(byId.get(UNAUTHORIZED)!.actions.join(' ')).toMatch(/Anthropic use case details/);
  calls.length = 0;
  const again = await ni(['--enable']);
  expect(again.out.models.filter((m) => !m.ready).map((m) => m.modelId)).toEqual([UNAUTHORIZED]);
  expect(calls.filter((c) => c.startsWith('agree'))).toEqual([]); // nothing accepted twice
});

test('assess names what is missing', () => {
  expect(assess('ca-central-1', 'meta.x', { agreementAvailability: { status: 'PENDING' }, authorizationStatus: 'AUTHORIZED', entitlementAvailability: 'NOT_AVAILABLE' }))
    .toMatchObject({ ready: false, actions: [expect.stringMatching(/15 minutes/), expect.stringMatching(/payment method/)] });
  expect(assess('ca-central-1', 'meta.x', { agreementAvailability: { status: 'AVAILABLE' }, authorizationStatus: 'NOT_AUTHORIZED', entitlementAvailability: 'AVAILABLE' }).actions)
    .toEqual([expect.stringMatching(/SCP/)]);
});
