import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { canonicalJson, sha256Hex } from '../../lambdas/core/ledger';
import { parseCustodyPath } from '../../lambdas/core/custody';
import { redriveOutbox } from '../../lambdas/store/custody-events';
import { verifyLedger } from '../../lambdas/store/ledger';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { fetchOpenAI } from '../support/openapi';
import { watchResponseStreams, type ResponseStreams } from '../support/response-streams';

/*
 * The custody chain end to end: response headers, the event the gateway emits after each request, the local
 * EventBridge (duplicating and reordering deliveries) driving the same ledger writer as in AWS, receipts, and
 * `ni ledger verify` on the result.
 */

let gw: TestGateway;
let responses: ResponseStreams;
const MODEL = 'meta/llama-3-70b';

beforeAll(async () => {
  gw = await startTestGateway({ bus: { duplicate: 1, reorder: true } });
  responses = watchResponseStreams();
});
// A test that failed while the stand-in held a call must not leave it (and the gateway's close) waiting.
afterEach(() => gw.standIn!.release());
afterAll(async () => {
  responses.restore();
  await gw.close();
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

interface Receipt {
  request_id: string;
  hash: string;
  entry: { seq: number; prev_hash: string; v: number; recorded_at: string; event: Record<string, unknown> & { request_sha256: string; response_sha256: string; custody_path: string[] } };
}

async function chat(secret: string, content: string, stream = false) {
  const res = await fetchOpenAI(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, stream, messages: [{ role: 'user', content }] }),
  });
  return { res, text: await res.text(), id: res.headers.get('x-ni-request-id')! };
}

const receipt = async (secret: string, id: string) => {
  const res = await fetch(`${gw.url}/v1/custody/${id}`, { headers: { authorization: `Bearer ${secret}` } });
  return { status: res.status, body: (await res.json()) as Receipt };
};

test('headers: request id, jurisdiction and a parseable custody path, before the first byte', async () => {
  const { secret } = await gw.client();
  const { res } = await chat(secret, 'custody headers', true);
  expect(res.headers.get('x-ni-request-id')).toBe(res.headers.get('x-request-id'));
  expect(res.headers.get('x-ni-resolved-jurisdiction')).toBe('SIMULATED');
  expect(parseCustodyPath(res.headers.get('x-ni-custody-path')!)).toEqual([
    { party: 'ni-gateway', place: 'local', upstream_id: null },
    { party: 'bedrock-standin', place: 'loopback', upstream_id: 'meta.llama3-70b-instruct-v1:0' },
  ]);
  const unknown = await fetchOpenAI(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: '{"model":"x/y","messages":[]}' });
  expect(unknown.headers.get('x-ni-request-id')).toBeTruthy();
  expect(((await unknown.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
});

test('each request leaves one ledger entry with hashes of exactly what went upstream and back, and nothing personal', async () => {
  const { secret, keyId } = await gw.client();
  const prompt = 'custody receipt: the secret recipe is maple syrup';
  const { text, id } = await chat(secret, prompt);
  await gw.flush();
  const { status, body } = await receipt(secret, id);
  expect(status).toBe(200);
  expect(body.request_id).toBe(id);
  const event = body.entry.event;
  expect(event).toMatchObject({ request_id: id, key_id: keyId, model: MODEL, privacy_tier: 'managed_canadian_cloud', jurisdiction: 'SIMULATED', status: 'ok', http_status: 200, finish_reason: 'stop' });
  const upstream = gw.standIn!.requests.find((r) => r.raw.includes('the secret recipe'))!;
  expect(event.request_sha256).toBe(sha256(upstream.raw));
  expect(event.response_sha256).toBe(sha256(text));
  expect(JSON.stringify(body)).not.toContain('maple syrup');
  // The receipt can be checked: its hash is the canonical entry's.
  expect(body.hash).toBe(sha256Hex(canonicalJson(body.entry)));
  // Another key cannot read it.
  const other = await gw.client();
  expect((await receipt(other.secret, id)).status).toBe(404);
});

test('errors and cancelled streams are recorded too', async () => {
  const { secret } = await gw.client({ tier: 'global' });
  const failed = await chat(secret, 'ni-standin:validation_error');
  const controller = new AbortController();
  const res = await fetchOpenAI(`${gw.url}/v1/chat/completions`, {
    method: 'POST', signal: controller.signal,
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'ni-standin:words=40 ni-standin:hold' }] }),
  });
  await res.body!.getReader().read();
  // The stand-in holds the stream until the gateway has seen the client go.
  controller.abort();
  await responses.lastClosed();
  gw.standIn!.release();
  await gw.flush();
  const cancelled = await receipt(secret, res.headers.get('x-ni-request-id')!);
  expect(cancelled.status).toBe(200);
  expect(cancelled.body.entry.event.status).toBe('cancelled');
  const error = (await receipt(secret, failed.id)).body.entry.event;
  expect(error).toMatchObject({ status: 'error', http_status: 400, error_code: 'upstream_validation_error' });
});

test('duplicated and reordered deliveries from concurrent requests: one entry each, chains intact', async () => {
  // A burst of 24 at once: more than a key's default concurrency allows.
  const { secret, keyId } = await gw.client({ max_concurrent_requests: null });
  const ids = (await Promise.all(Array.from({ length: 24 }, (_, i) => chat(secret, `burst ${i}`)))).map((r) => r.id);
  await gw.flush();
  expect(gw.bus.stats.delivered).toBeGreaterThan(gw.bus.stats.accepted); // duplicates were delivered
  const seqs = await Promise.all(ids.map(async (id) => (await receipt(secret, id)).body.entry.seq));
  expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  const report = await verifyLedger({ keyId });
  expect(report.ok).toBe(true);
  const { stdout } = await promisify(execFile)(process.execPath, ['bin/ni.js', 'ledger', 'verify', '--json'], { cwd: join(__dirname, '../..'), env: process.env });
  expect(JSON.parse(stdout).ok).toBe(true);
});

test('when PutEvents keeps failing the event is kept durably and re-driven, never lost', async () => {
  const { secret } = await gw.client();
  gw.bus.setFaults({ failPutEvents: { mode: 'partial' } });
  const { id } = await chat(secret, 'outbox please');
  // The event is emitted after the response has ended, with retries; the request settles once it is in the outbox.
  await gw.flush();
  const outbox = join(gw.stateDir, 'custody-outbox.jsonl');
  const persisted = () => existsSync(outbox) && readFileSync(outbox, 'utf8').includes(id);
  gw.bus.setFaults({ failPutEvents: null });
  expect(persisted()).toBe(true);
  expect((await receipt(secret, id)).status).toBe(404);
  await redriveOutbox();
  await gw.flush();
  expect((await receipt(secret, id)).status).toBe(200);
});
