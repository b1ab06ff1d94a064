import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuMsOf } from './load';

/**
 * Portkey's open-source gateway (`@portkey-ai/gateway`, installed outside the project) as a second path for the
 * gateway benchmark, started the way `npx @portkey-ai/gateway` starts it: `node build/start-server.js`.
 */
export interface Portkey {
  proc: ChildProcess;
  pid: number;
  url: string;
  version: string | null;
  command: string;
}

/** A port nothing listens on, on every interface (as Portkey binds): the OS picks it, then it is released. */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts Portkey and waits until it answers. Its stdout (a banner) and stderr go to `logFile`, off the bench's
 * output: 1.15.2 writes a stack trace there for every streamed Bedrock reply (its log middleware fails).
 */
export async function startPortkey(startServerJs: string, logFile: string): Promise<Portkey> {
  const port = await freePort();
  const log = openSync(logFile, 'w');
  const proc = spawn(process.execPath, [startServerJs, `--port=${port}`, '--headless'], { env: process.env, stdio: ['ignore', log, log] });
  closeSync(log); // the child holds its own copy
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 20_000;
  while (proc.exitCode === null && performance.now() < deadline) {
    try {
      if ((await fetch(`${url}/`)).ok) {
        let version: string | null = null;
        try {
          version = JSON.parse(readFileSync(join(dirname(startServerJs), '..', 'package.json'), 'utf8')).version ?? null;
        } catch {
          // not laid out as the npm package: the version stays unknown
        }
        return { proc, pid: proc.pid!, url, version, command: `node ${startServerJs} --port=${port} --headless` };
      }
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`Portkey (${startServerJs}) did not start on port ${port}: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
}

/**
 * Per-request headers routing Portkey to the Bedrock stand-in. `apiKey` auth forwards a bearer token instead of
 * signing each upstream call with SigV4: the gateway skips SigV4 on loopback too.
 */
export const portkeyHeaders = (region: string, standInUrl: string): Record<string, string> => ({
  'x-portkey-provider': 'bedrock',
  'x-portkey-aws-region': region,
  'x-portkey-custom-host': standInUrl,
  'x-portkey-aws-auth-type': 'apiKey',
});

/**
 * Portkey has no drain: waits until the process's CPU time stops advancing for 50 ms (its log middleware runs
 * after each response), at most 2.5 s.
 */
export async function settled(pid: number): Promise<void> {
  let last = cpuMsOf(pid);
  for (let i = 0; i < 50; i++) {
    await sleep(50);
    const now = cpuMsOf(pid);
    if (now === last || Number.isNaN(now)) return; // NaN: no /proc to read
    last = now;
  }
}
