import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Writable } from 'node:stream';
import type OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { reloadConfig } from '../../lambdas/config';

/*
 * A request's after-response work (usage, custody event) waits for the group-commit window while the handler's
 * promise is still pending, as a Lambda must not return before it. Meanwhile the response stream (and with it the
 * HTTP request and response) must be collectable: kept alive that long, back to back, every request's objects
 * outlive the young generation and fill the old one.
 */

const WINDOW_MS = 2_000;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let gw: TestGateway;
let openai: OpenAI;
const streams: WeakRef<Writable>[] = [];
type ResponseStreamFrom = (stream: Writable, prelude: unknown) => Writable;
/** The local `awslambda` shim's, installed once the gateway has started. */
const shim = () => (globalThis as unknown as { awslambda: { HttpResponseStream: { from: ResponseStreamFrom } } }).awslambda.HttpResponseStream;
let from: ResponseStreamFrom;

beforeAll(async () => {
  process.env.NI_GROUP_COMMIT_MS = String(WINDOW_MS);
  reloadConfig();
  gw = await startTestGateway();
  ({ openai } = await gw.client({ tier: 'global' }));
  from = shim().from;
  shim().from = (stream, prelude) => {
    streams.push(new WeakRef(stream));
    return from(stream, prelude);
  };
});
afterAll(async () => {
  shim().from = from;
  delete process.env.NI_GROUP_COMMIT_MS;
  reloadConfig();
  await gw.close();
});

test('once a streamed answer has ended, its response stream is let go while the request is still settling', async () => {
  const accepted = gw.bus.stats.accepted;
  const stream = await openai.chat.completions.create({ model: 'meta/llama-3-70b', messages: [{ role: 'user', content: 'Say hello.' }], stream: true });
  let finish: string | null = null;
  for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
  expect(finish).toBe('stop');
  expect(streams).toHaveLength(1);

  await new Promise((done) => setImmediate(done)); // a WeakRef holds its target until the end of the job that made it
  gc();
  // Still settling: the custody event waits in its group-commit window, not yet on the bus.
  expect(gw.bus.stats.accepted).toBe(accepted);
  expect(streams[0].deref()).toBeUndefined();

  await gw.flush();
  expect(gw.bus.stats.accepted).toBe(accepted + 1);
});
