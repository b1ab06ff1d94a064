/**
 * `npm run bench`: bundle, gateway overhead, PII scanner, custody ledger. Progress goes to stderr; stdout gets
 * one JSON document (`npm run -s bench > bench.json`: -s keeps npm's banner off stdout). Missed targets are
 * reported (pass: false), never turned into a failing exit code.
 */
import { cpus } from 'node:os';
import { bundleBench } from './bundle';
import { coldStartBench } from './cold-start';
import { gatewayBench } from './gateway';
import { ledgerBench } from './ledger';
import { piiBench } from './pii';
import { providersBench } from './providers';

// Children inherit this: the SDK's notice about its future Node 22 requirement is noise on stderr here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function timed(name: string, bench: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  process.stderr.write(`[bench] ${name}…\n`);
  const t0 = performance.now();
  const result = await bench();
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  process.stderr.write(`[bench] ${name} done in ${seconds} s\n`);
  return { ...result, benchSeconds: seconds };
}

async function main(): Promise<void> {
  const cpu = cpus();
  const result = {
    machine: { cpus: cpu.length, cpuModel: cpu[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform}-${process.arch}` },
    bundle: await timed('bundle', bundleBench),
    gateway: await timed('gateway', gatewayBench),
    providers: await timed('providers', providersBench),
    coldStart: await timed('cold start', coldStartBench),
    pii: await timed('pii', piiBench),
    ledger: await timed('ledger', ledgerBench),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
