/**
 * One gateway Lambda environment in a child process (bench/cost-child.ts): the production bundles of the gateway
 * and the authorizer, as the stack deploys them, invoked once per request as API Gateway would. `npm run cost`
 * counts what its requests cost; `npm run bench` times its cold starts. The store, bus and stand-ins it talks to
 * are the caller's, given in the child's environment.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { build } from 'esbuild';
import { handlerEntry } from '../lib/bundling';
import { esbuildOptionsFor } from '../lib/esbuild';
import type { ChildMessage, Invocation, InvocationResult } from './cost-child';

export interface LambdaBundles {
  gatewayJs: string;
  authorizerJs: string;
  childJs: string;
}

/** Bundles the gateway and the authorizer as the stack does, and the child that plays the environment, into `dir`. */
export async function buildLambdaBundles(dir: string): Promise<LambdaBundles> {
  const bundles = { gatewayJs: join(dir, 'gateway.js'), authorizerJs: join(dir, 'authorizer.js'), childJs: join(dir, 'cost-child.js') };
  await build({ ...esbuildOptionsFor(handlerEntry('gateway')), outfile: bundles.gatewayJs, logLevel: 'error' });
  await build({ ...esbuildOptionsFor(handlerEntry('authorizer')), outfile: bundles.authorizerJs, logLevel: 'error' });
  // The child runs as plain node, like Lambda's runtime: no TypeScript loader in its start-up or its CPU time.
  await build({ entryPoints: [join(__dirname, 'cost-child.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: bundles.childJs, logLevel: 'error' });
  return bundles;
}

export interface LambdaEnvironment {
  /** When the gateway's handler was loaded: since node started, and the require() of its bundle. */
  loaded: { sinceProcessStartMs: number; requireMs: number };
  run(invocations: Invocation[]): Promise<InvocationResult[]>;
  stop(): void;
}

/** A fresh environment: resolves once its bundles are loaded. `onOutput` gets what it writes (its log lines). */
export async function startLambdaEnvironment(bundles: LambdaBundles, env: NodeJS.ProcessEnv, onOutput: (chunk: Buffer) => void = () => undefined): Promise<LambdaEnvironment> {
  const proc = fork(bundles.childJs, [], {
    execArgv: [],
    env: { ...env, NI_COST_BUNDLES: JSON.stringify({ gatewayJs: bundles.gatewayJs, authorizerJs: bundles.authorizerJs }) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  proc.stdout!.on('data', onOutput);
  proc.stderr!.on('data', onOutput);
  let exited: (err: Error) => void = () => undefined;
  proc.once('exit', (code) => exited(new Error(`the Lambda environment's process exited with ${code}`)));
  const next = () => new Promise<ChildMessage>((resolve, reject) => {
    exited = reject;
    proc.once('message', (m: ChildMessage) => ('error' in m ? reject(new Error(m.error)) : resolve(m)));
  });
  const first = await next();
  if (!('loaded' in first)) throw new Error('the Lambda environment did not load');
  return {
    loaded: first.loaded,
    async run(invocations) {
      const answer = next();
      proc.send({ run: invocations });
      const m = await answer;
      return 'results' in m ? m.results : [];
    },
    stop() {
      exited = () => undefined;
      proc.kill();
    },
  };
}

export interface ColdStart {
  /** From node's start to the gateway's handler loaded, and the require() of its bundle within that. */
  sinceProcessStartMs: number;
  requireMs: number;
  /** The first request of a fresh environment, the authorizer's own cold start left out (its function's in AWS). */
  firstRequestMs: number;
  firstRequestFirstByteMs: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** `runs` fresh environments, each loaded then sent `first`: the median of each figure. */
export async function coldStarts(runs: number, start: () => Promise<LambdaEnvironment>, first: Invocation): Promise<ColdStart> {
  const colds: ColdStart[] = [];
  for (let i = 0; i < runs; i++) {
    const c = await start();
    const [r] = await c.run([first]);
    c.stop();
    if (r.status >= 400) throw new Error(`the first request of a fresh environment failed with ${r.status}`);
    colds.push({ ...c.loaded, firstRequestMs: r.totalMs - r.authorizerMs, firstRequestFirstByteMs: r.firstByteMs - r.authorizerMs });
  }
  return Object.fromEntries(Object.keys(colds[0]).map((k) => [k, median(colds.map((c) => c[k as keyof ColdStart]))])) as unknown as ColdStart;
}
