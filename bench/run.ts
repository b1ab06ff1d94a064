/**
 * `npm run bench`: bundle, gateway overhead, PII scanner, custody ledger. Progress goes to stderr; stdout gets
 * one JSON document (`npm run -s bench > bench.json`: -s keeps npm's banner off stdout). Missed targets are
 * reported (pass: false), never turned into a failing exit code.
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { bundleBench } from './bundle';
import { gatewayBench } from './gateway';

type Bench = () => Promise<Record<string, unknown>>;

/** Benches owned by other modules, loaded only if their file exists so one missing file does not stop the rest. */
async function optional(file: string, name: string): Promise<Bench | null> {
  if (!existsSync(join(__dirname, `${file}.ts`))) return null;
  return (await import(`./${file}`))[name] as Bench;
}

async function timed(name: string, bench: Bench | null): Promise<Record<string, unknown>> {
  if (!bench) return { skipped: `bench/${name}.ts is not there yet` };
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
    pii: await timed('pii', await optional('pii', 'piiBench')),
    ledger: await timed('ledger', await optional('ledger', 'ledgerBench')),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
