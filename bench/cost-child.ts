/**
 * The child of `npm run cost` (bench/cost.ts): one gateway Lambda environment. It loads the production bundles of
 * the gateway and the authorizer (paths in NI_COST_BUNDLES), reports how long that took, then invokes them once
 * per request it is sent, as API Gateway and Lambda would, measuring each invocation's time and CPU. Plain node
 * only: the parent bundles this file, so nothing else runs in the process.
 */
import { Writable } from 'node:stream';
import type { Context } from 'aws-lambda';

export interface Invocation { body: string; secret: string }
export interface InvocationResult { status: number; firstByteMs: number; cpuToFirstByteMs: number; totalMs: number; cpuMs: number; authorizerMs: number; rssMB: number }

export type ChildMessage =
  | { loaded: { sinceProcessStartMs: number; requireMs: number } }
  | { results: InvocationResult[] }
  | { error: string };

const send = (m: ChildMessage) => process.send!(m);

function main(): void {
  const { gatewayJs, authorizerJs } = JSON.parse(process.env.NI_COST_BUNDLES!) as { gatewayJs: string; authorizerJs: string };
  // Lambda's runtime provides `awslambda`; the gateway calls streamifyResponse when it is loaded.
  (globalThis as Record<string, unknown>).awslambda = { streamifyResponse: (f: unknown) => f, HttpResponseStream: { from: (s: unknown) => s } };
  // The gateway's own cold start: its bundle alone (the authorizer is a function of its own in AWS).
  const beforeRequire = performance.now();
  const gateway = require(gatewayJs).handler as (e: object, s: Writable, c: Context) => Promise<void>;
  const loaded = { sinceProcessStartMs: performance.now(), requireMs: performance.now() - beforeRequire };
  const authorizer = require(authorizerJs).handler as (e: object, c: Context) => Promise<{ context: Record<string, unknown> }>;
  send({ loaded });

  let n = 0;
  async function invoke({ body, secret }: Invocation): Promise<InvocationResult> {
    const requestId = `cost-${process.pid}-${++n}`;
    const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const auth = await authorizer({ type: 'REQUEST', headers, methodArn: 'arn:aws:execute-api:ca-central-1:000000000000:cost/prod/POST/v1/chat/completions' }, {} as Context);
    const authorizerMs = performance.now() - t0;
    let firstByteMs = 0;
    let cpuToFirstByteMs = 0;
    let head = '';
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        if (!firstByteMs) {
          firstByteMs = performance.now() - t0;
          const c = process.cpuUsage(cpu0);
          cpuToFirstByteMs = (c.user + c.system) / 1000;
        }
        if (head.length < 64) head += chunk.toString('utf8');
        done();
      },
    });
    const event = {
      httpMethod: 'POST', path: '/v1/chat/completions', resource: '/v1/{proxy+}', headers, body, isBase64Encoded: false,
      queryStringParameters: null, requestContext: { requestId, authorizer: auth.context },
    };
    // The handler resolves once the request has settled: what Lambda bills.
    await gateway(event, stream, { awsRequestId: requestId } as Context);
    const totalMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return {
      status: head.startsWith('{"error"') ? 400 : 200,
      firstByteMs, cpuToFirstByteMs, totalMs, authorizerMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      rssMB: process.memoryUsage().rss / 2 ** 20,
    };
  }

  process.on('message', (m: { run: Invocation[] }) => {
    (async () => {
      const results: InvocationResult[] = [];
      for (const inv of m.run) results.push(await invoke(inv));
      return results;
    })().then((results) => send({ results }), (err) => send({ error: String(err?.stack ?? err) }));
  });
  process.once('disconnect', () => process.exit(0));
}

main();
