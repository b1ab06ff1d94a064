import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import builtIn from '../../lambdas/catalog.json';
import { parseCustodyPath } from '../../lambdas/core/custody';
import { useScheduler } from '../../lambdas/compose';
import { DEFAULT_FIRST_BYTE_TIMEOUT_MS } from '../../lambdas/providers/upstream';
import { verifyLedger } from '../../lambdas/store/ledger';
import { startTestGateway, type TestGateway } from '../support/gateway';

/*
 * Residency across failover and throttling, asserted on the stand-ins' own request logs: a request never reaches
 * a route its tier does not allow, failover moves only to the next route of the first route's jurisdiction, and
 * never after the first byte. The catalog gives gpt-4o a second Canadian route (an OpenAI-compatible endpoint in
 * Canada that is not Canadian-controlled) between Azure Canada East and OpenAI (US), and the self-hosted Llama a
 * second Canadian-controlled endpoint after a merely Canadian one.
 */

const BACKUP_UPSTREAM = 'gpt-4o-2024-11-20';
const dir = mkdtempSync(join(tmpdir(), 'ni-residency-'));
let gw: TestGateway;

/** The request flow's timers (deadlines, first-byte timeouts) fire only when a test says: nothing races them. */
const timers = new Map<number, { ms: number; fire: () => void }>();
let timerIds = 0;
/** Fires the first-byte timeouts of the attempts waiting for their provider's headers now. */
function firstBytePassed(): void {
  for (const [id, t] of timers) {
    if (t.ms !== DEFAULT_FIRST_BYTE_TIMEOUT_MS) continue;
    timers.delete(id);
    t.fire();
  }
}

beforeAll(async () => {
  const catalog = structuredClone(builtIn) as unknown as { endpoints: Record<string, object>; models: { id: string; routes: object[] }[] };
  catalog.endpoints['ca-backup'] = { base_url: 'http://127.0.0.1:8001/v1' };
  catalog.endpoints['sovereign-b'] = { base_url: 'http://127.0.0.1:8002/v1', secret: true };
  const model = (id: string) => catalog.models.find((m) => m.id === id)!;
  const [azure, direct] = model('openai/gpt-4o').routes;
  const backup = { provider: 'openai_compatible', endpoint: 'ca-backup', region: 'canada', upstream_id: BACKUP_UPSTREAM, jurisdiction: 'CA' };
  model('openai/gpt-4o').routes = [azure, backup, direct];
  const [sovereign] = model('meta/llama-3.3-70b').routes;
  model('meta/llama-3.3-70b').routes = [{ ...backup, upstream_id: 'llama-3.3-70b' }, sovereign, { ...sovereign, endpoint: 'sovereign-b' }];
  writeFileSync(join(dir, 'catalog.json'), JSON.stringify(catalog));
  process.env.NI_CATALOG_FILE = join(dir, 'catalog.json');
  gw = await startTestGateway();
  useScheduler((ms, fire) => {
    const id = timerIds++;
    timers.set(id, { ms, fire });
    return () => timers.delete(id);
  });
});
afterAll(async () => {
  useScheduler(null);
  await gw.close();
  delete process.env.NI_CATALOG_FILE;
  rmSync(dir, { recursive: true, force: true });
});

const azure = () => gw.openaiStandIns.azure_openai!;
const direct = () => gw.openaiStandIns.openai!;
const compat = () => gw.openaiStandIns.openai_compatible!;
/** Requests each stand-in received from now on, by where they went. */
function watch() {
  const from = { azure: azure().requests.length, direct: direct().requests.length, compat: compat().requests.length };
  return () => ({
    azure: azure().requests.slice(from.azure).map((r) => r.outcome),
    us: direct().requests.slice(from.direct).length,
    compat: compat().requests.slice(from.compat).map((r) => `${r.path.split('/')[1]}:${r.outcome}`),
  });
}

async function attemptsOf(secret: string, id: string) {
  await gw.flush();
  const res = await fetch(`${gw.url}/v1/custody/${id}`, { headers: { authorization: `Bearer ${secret}` } });
  return ((await res.json()) as { entry: { event: { attempts?: { provider: string; upstream_id: string; outcome: string }[] } } }).entry.event.attempts!.map((a) => `${a.provider}#${a.upstream_id}:${a.outcome}`);
}

async function streamed(openai: OpenAI, model: string) {
  const { data, response } = await openai.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  let text = '';
  for await (const c of data) text += c.choices[0]?.delta?.content ?? '';
  return { text, id: response.headers.get('x-ni-request-id')!, hop: parseCustodyPath(response.headers.get('x-ni-custody-path')!)[1] };
}

describe.each(['managed_canadian_cloud', 'global'] as const)('openai/gpt-4o under %s (first route: Azure Canada East)', (tier) => {
  test.each([['throttle', 'throttled'], ['unavailable', 'unavailable'], ['hang', 'timeout']] as const)('Azure %s → the Canadian backup answers; the US route is never called', async (fault, outcome) => {
    const { openai, secret } = await gw.client({ tier });
    const sent = watch();
    azure().inject(fault);
    const answer = streamed(openai, 'openai/gpt-4o');
    if (fault === 'hang') {
      await azure().hung(); // Azure has the request and sends nothing: its attempt waits for the first byte
      firstBytePassed();
    }
    const r = await answer;
    expect(r.text).toBe('Hello from the openai stand-in.');
    expect(r.hop).toMatchObject({ party: 'openai_compatible-standin', upstream_id: BACKUP_UPSTREAM });
    expect(sent()).toEqual({ azure: [fault], us: 0, compat: ['ca-backup:answered'] });
    expect(await attemptsOf(secret, r.id)).toEqual([`azure_openai#gpt-4o:${outcome}`, `openai_compatible#${BACKUP_UPSTREAM}:ok`]);
  });

  test('every Canadian route throttled: 429 upstream_throttled after three attempts, none of them outside Canada', async () => {
    const { openai, secret } = await gw.client({ tier });
    const sent = watch();
    azure().inject('throttle', 'throttle');
    compat().inject('throttle');
    const err = (await openai.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.code).toBe('upstream_throttled');
    expect(sent()).toEqual({ azure: ['throttle', 'throttle'], us: 0, compat: ['ca-backup:throttle'] });
    expect(await attemptsOf(secret, err.headers!.get('x-ni-request-id')!)).toEqual(['azure_openai#gpt-4o:throttled', `openai_compatible#${BACKUP_UPSTREAM}:throttled`, 'azure_openai#gpt-4o:throttled']);
  });
});

test('never after the first byte: a stream broken mid-way ends with an error event, and no other route is called', async () => {
  const { openai } = await gw.client();
  const sent = watch();
  azure().inject('fail_mid_stream');
  const stream = await openai.chat.completions.create({ model: 'openai/gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  const err = await (async () => {
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  })().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.APIError);
  expect(text).toBe('Hello ');
  expect(sent()).toEqual({ azure: ['fail_mid_stream'], us: 0, compat: [] });
});

test('canadian_sovereign: failover skips the merely Canadian endpoint and lands on the other Canadian-controlled one', async () => {
  const { openai, secret } = await gw.client({ tier: 'canadian_sovereign' });
  const sent = watch();
  compat().inject('throttle');
  const r = await streamed(openai, 'meta/llama-3.3-70b');
  expect(r.text).toBe('Hello from the openai stand-in.');
  expect(sent()).toEqual({ azure: [], us: 0, compat: ['sovereign-vllm:throttle', 'sovereign-b:answered'] });
  expect(await attemptsOf(secret, r.id)).toEqual(['openai_compatible#meta-llama/Llama-3.3-70B-Instruct:throttled', 'openai_compatible#meta-llama/Llama-3.3-70B-Instruct:ok']);
  // The same model under managed_canadian_cloud may use the merely Canadian endpoint, which is first.
  const { openai: managed } = await gw.client({ tier: 'managed_canadian_cloud' });
  const later = watch();
  await streamed(managed, 'meta/llama-3.3-70b');
  expect(later().compat).toEqual(['ca-backup:answered']);
});

test('custody events with attempts keep the ledger verifiable', async () => {
  await gw.flush();
  const report = await verifyLedger();
  expect(report.ok).toBe(true);
});
