/**
 * The Lambda artifacts as the stack builds them (esbuildOptionsFor from lib/esbuild.ts): size of each handler's
 * bundle, and for the gateway the time `require()` of the bundle adds to a fresh node process (cold start share).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { handlerEntry, HANDLERS, type HandlerName } from '../lib/bundling';
import { esbuildOptionsFor } from '../lib/esbuild';
import { percentiles } from './load';

const RUNS = 20;
const TARGETS = { gatewayKB: 750, requireMs: 100 };

/** Lambda's runtime provides `awslambda`; handlers call awslambda.streamifyResponse when loaded. */
const SHIM = `globalThis.awslambda = {
  streamifyResponse: (f) => f,
  HttpResponseStream: { from: (s) => s },
};
`;

function wallMs(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${r.stderr.toString().slice(0, 500)}`);
  return elapsed;
}

const log = (msg: string) => process.stderr.write(`[bench:bundle] ${msg}\n`);

export async function bundleBench(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ni-bundle-'));
  try {
    const sizesKB = {} as Record<HandlerName, number>;
    for (const name of HANDLERS) {
      const outfile = join(dir, name, 'index.js');
      await build({ ...esbuildOptionsFor(handlerEntry(name)), outfile, logLevel: 'error' });
      sizesKB[name] = Math.round(statSync(outfile).size / 1024);
    }
    log(`bundled ${HANDLERS.length} handlers; timing require() of the gateway bundle, ${RUNS} runs`);

    const shim = join(dir, 'awslambda-shim.js');
    writeFileSync(shim, SHIM);
    const gateway = join(dir, 'gateway', 'index.js');
    const bare: number[] = [];
    const withBundle: number[] = [];
    // Interleaved, so a disturbance of the machine hits both series alike.
    for (let i = 0; i < RUNS; i++) {
      bare.push(wallMs(['-r', shim, '-e', '0']));
      withBundle.push(wallMs(['-r', shim, '-e', `require(${JSON.stringify(gateway)})`]));
    }
    // Memory of a process that has loaded the handler and nothing else (the gateway bench's process holds far more).
    const rss = spawnSync(process.execPath, ['-r', shim, '-e', `require(${JSON.stringify(gateway)}); process.stdout.write(String(process.memoryUsage().rss))`]);
    const rssAfterRequireMB = Math.round(Number(rss.stdout.toString()) / 1024 / 102.4) / 10;
    const bareMs = percentiles(bare).p50;
    const bundleMs = percentiles(withBundle).p50;
    const requireMs = Math.round((bundleMs - bareMs) * 10) / 10;
    return {
      options: 'esbuildOptionsFor() from lib/esbuild.ts (minified, AWS SDK bundled, platform node, target node22, cjs)',
      sizesKB,
      gateway: {
        sizeKB: sizesKB.gateway,
        nodeStartMedianMs: Math.round(bareMs * 10) / 10,
        nodeStartWithRequireMedianMs: Math.round(bundleMs * 10) / 10,
        requireMs,
        rssAfterRequireMB,
        runs: RUNS,
        node: process.version,
        targets: {
          size: { targetKB: TARGETS.gatewayKB, measuredKB: sizesKB.gateway, pass: sizesKB.gateway <= TARGETS.gatewayKB },
          require: { targetMs: TARGETS.requireMs, measuredMs: requireMs, pass: requireMs <= TARGETS.requireMs },
        },
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
