import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { watchResponseStreams, type ResponseStreams } from '../support/response-streams';
import { manualWindows } from '../support/windows';
import { reloadConfig } from '../../lambdas/config';

/*
 * A request's after-response work (usage, custody event) waits for the group-commit window while the handler's
 * promise is still pending, as a Lambda must not return before it. Meanwhile the response stream (and with it the
 * HTTP request and response) must be collectable: kept alive that long, back to back, every request's objects
 * outlive the young generation and fill the old one.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let gw: TestGateway;
let openai: OpenAI;
let responses: ResponseStreams;

beforeAll(async () => {
  process.env.NI_GROUP_COMMIT_MS = '100';
  reloadConfig();
  gw = await startTestGateway();
  ({ openai } = await gw.client({ tier: 'global' }));
  responses = watchResponseStreams();
});
afterAll(async () => {
  responses.restore();
  delete process.env.NI_GROUP_COMMIT_MS;
  reloadConfig();
  await gw.close();
});

test('once a streamed answer has ended, its response stream is let go while the request is still settling', async () => {
  const accepted = gw.bus.stats.accepted;
  // The windows stay open until the test ends them: the request is settling for as long as the test looks.
  const windows = manualWindows();
  try {
    const stream = await openai.chat.completions.create({ model: 'meta/llama-3-70b', messages: [{ role: 'user', content: 'Say hello.' }], stream: true });
    let finish: string | null = null;
    for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe('stop');
    expect(responses.streams).toHaveLength(1);
    await responses.lastClosed(); // the server's side of the response has ended too

    await new Promise((done) => setImmediate(done)); // a WeakRef holds its target until the end of the job that made it
    gc();
    // Still settling: its usage and its custody event each wait in a group-commit window; nothing is on the bus.
    expect(windows.open).toBe(2);
    expect(gw.bus.stats.accepted).toBe(accepted);
    expect(responses.streams[0].deref()).toBeUndefined();
  } finally {
    windows.restore();
  }
  await gw.flush();
  expect(gw.bus.stats.accepted).toBe(accepted + 1);
});
