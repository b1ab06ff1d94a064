import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { failureOfStatus, postForEvents } from '../../lambdas/providers/http';
import { UpstreamError } from '../../lambdas/providers/provider';

/* The POST-for-events helper the HTTP providers share, against a loopback server answering as scripted. */

let server: http.Server;
let url: string;
const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      const status = Number(req.url!.slice(1));
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `refused with ${status}` } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('event: a\ndata: {"n":1}\n\ndata: {"n":2}\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => {
  server.closeAllConnections();
  server.close(() => resolve());
}));

test('the one classification of HTTP statuses', () => {
  expect([429, 408, 400, 413, 422, 409, 401, 403, 404, 500, 503, 529, 302].map((s) => [s, failureOfStatus(s)])).toEqual([
    [429, 'throttled'], [408, 'timeout'], [400, 'rejected'], [413, 'rejected'], [422, 'rejected'], [409, 'rejected'],
    [401, 'not_enabled'], [403, 'not_enabled'], [404, 'not_enabled'], [500, 'unavailable'], [503, 'unavailable'], [529, 'unavailable'], [302, 'broken'],
  ]);
});

test('events stream after the headers; the hash is of the exact bytes sent, with the given headers', async () => {
  const body = '{"q":"é"}';
  const post = await postForEvents(`${url}/200`, { 'x-api-key': 'k' }, body);
  expect(post.requestSha256).toBe(createHash('sha256').update(Buffer.from(body, 'utf8')).digest('hex'));
  const events = [];
  for await (const e of post.events) events.push(e);
  expect(events).toEqual([{ event: 'a', data: '{"n":1}' }, { data: '{"n":2}' }]);
  expect(received.at(-1)).toMatchObject({ body, headers: { 'x-api-key': 'k', 'content-type': 'application/json', accept: 'text/event-stream' } });
});

test("a refusal carries the provider's message; other failures carry none", async () => {
  await expect(postForEvents(`${url}/400`, {}, '{}')).rejects.toMatchObject({ failure: 'rejected', message: expect.stringContaining('refused with 400') });
  const throttled = await postForEvents(`${url}/429`, {}, '{}').catch((e: unknown) => e);
  expect(throttled).toEqual(new UpstreamError('throttled'));
});

test('a refused connection is unavailable (retryable)', async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await expect(postForEvents(`http://127.0.0.1:${port}/`, {}, '{}')).rejects.toMatchObject({ failure: 'unavailable', retryable: true });
});
