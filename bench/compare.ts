/**
 * `npm run bench:compare -- <checkout>`: this build's gateway and another checkout's (an earlier commit, a branch)
 * side by side on one Bedrock stand-in, in rounds of back-to-back streamed requests that alternate between the two,
 * so a drift of the machine weighs on both alike. Two whole `npm run bench` runs one after the other differ by
 * more than two builds do; this is how a change is shown to cost something or nothing.
 *
 * The other checkout needs its dependencies and its bench bundle: `npm ci && BENCH_QUICK=1 npm run bench` there
 * once (the bundle is node_modules/.cache/ni-local/bench/main.js, as local/build.ts writes it). Its gateway runs
 * from that bundle with the same environment, node flags and key settings as this one's.
 *
 * Prints JSON: per build and prompt, p50/p99 of the whole answer and of the first token, and the gateway
 * process's CPU per request on its main thread (the request path) and on its other threads (the embedded store's
 * thread with the ledger writer); then this build's differences from the other's.
 * COMPARE_ROUNDS, COMPARE_PER_ROUND and COMPARE_WARMUP change how many requests are sent; COMPARE_CPU_PROF=<dir>
 * runs both gateways with --cpu-prof and leaves their profiles in <dir>, one subfolder per build.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import OpenAI from 'openai';
import { buildLocalRuntime, LOCAL_BUILD_ROOT } from '../local/build';
import { ask, startChild, startGatewayChild, stop, streamViaOpenAI, type Child } from './gateway';
import { percentiles, threadCpuMsOf, type Sample } from './load';

const MODEL = 'meta/llama-3-70b';
const PROMPTS = {
  short: 'Say hello.',
  pii: 'ni-standin:echo Please email jane.tremblay@northwind.ca or call (613) 555-0142 today.',
};
const ROUNDS = Number(process.env.COMPARE_ROUNDS ?? 20);
const PER_ROUND = Number(process.env.COMPARE_PER_ROUND ?? 150);
const WARMUP = Number(process.env.COMPARE_WARMUP ?? 3000);
const PROFILES = process.env.COMPARE_CPU_PROF ? resolve(process.env.COMPARE_CPU_PROF) : undefined;

const log = (msg: string) => process.stderr.write(`[bench:compare] ${msg}\n`);
const round = (n: number) => Math.round(n * 1000) / 1000;

interface Build {
  name: string;
  child: Child;
  openai: OpenAI;
  dataDir: string;
}

async function startGateway(name: string, serveJs: string, standInUrl: string): Promise<Build> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ni-compare-'));
  const child = await startGatewayChild(serveJs, standInUrl, dataDir, PROFILES && join(PROFILES, name));
  const openai = new OpenAI({ baseURL: `${child.info.url}/v1`, apiKey: String(child.info.secret), maxRetries: 0 });
  return { name, child, openai, dataDir };
}

const drain = (b: Build) => ask(b.child.proc, 'drain');

/** Rounds of one prompt, alternating which build goes first; each round's after-response work is drained in it. */
async function compareOn(builds: Build[], prompt: string) {
  const figures = builds.map(() => ({ samples: [] as Sample[], mainMs: 0, othersMs: 0 }));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [1, 0] : [0, 1];
    for (const i of order) {
      const b = builds[i];
      const pid = Number(b.child.info.pid);
      const before = threadCpuMsOf(pid);
      for (let n = 0; n < PER_ROUND; n++) figures[i].samples.push(await streamViaOpenAI(b.openai, MODEL, prompt));
      await drain(b);
      const after = threadCpuMsOf(pid);
      figures[i].mainMs += after.main - before.main;
      figures[i].othersMs += after.others - before.others;
    }
  }
  return figures.map((f) => ({
    totalMs: percentiles(f.samples.map((s) => s.totalMs)),
    ttftMs: percentiles(f.samples.map((s) => s.ttftMs)),
    cpuMsPerRequest: { mainThread: round(f.mainMs / f.samples.length), otherThreads: round(f.othersMs / f.samples.length) },
  }));
}

async function main(): Promise<void> {
  const other = resolve(process.argv[2] ?? '');
  const otherServeJs = join(other, 'node_modules', '.cache', 'ni-local', 'bench', 'main.js');
  if (!process.argv[2] || !existsSync(otherServeJs)) {
    throw new Error(`usage: npm run bench:compare -- <checkout>, where the checkout has its bench bundle (${otherServeJs} is missing: run npm ci && BENCH_QUICK=1 npm run bench there once)`);
  }
  const serveJs = await buildLocalRuntime(join(__dirname, 'serve.ts'), join(LOCAL_BUILD_ROOT, 'bench'));
  const standIn = await startChild(serveJs, 'standin', { ...process.env });
  const builds: Build[] = [];
  try {
    builds.push(await startGateway('this', serveJs, String(standIn.info.url)));
    builds.push(await startGateway(basename(other), otherServeJs, String(standIn.info.url)));
    log(`warm-up: ${WARMUP} requests per build; then ${ROUNDS} alternating rounds of ${PER_ROUND} per prompt and build`);
    for (const b of builds) {
      for (let n = 0; n < WARMUP; n++) await streamViaOpenAI(b.openai, MODEL, PROMPTS.short);
      await drain(b);
    }
    const results: Record<string, unknown> = {};
    for (const [name, prompt] of Object.entries(PROMPTS)) {
      log(`${name}…`);
      const [mine, theirs] = await compareOn(builds, prompt);
      results[name] = {
        this: mine,
        [builds[1].name]: theirs,
        thisMinusOther: {
          totalP50Ms: round(mine.totalMs.p50 - theirs.totalMs.p50),
          ttftP50Ms: round(mine.ttftMs.p50 - theirs.ttftMs.p50),
          totalP99Ms: round(mine.totalMs.p99 - theirs.totalMs.p99),
          mainThreadCpuMs: round(mine.cpuMsPerRequest.mainThread - theirs.cpuMsPerRequest.mainThread),
          otherThreadsCpuMs: round(mine.cpuMsPerRequest.otherThreads - theirs.cpuMsPerRequest.otherThreads),
        },
      };
    }
    process.stdout.write(`${JSON.stringify({ other, model: MODEL, rounds: ROUNDS, perRound: PER_ROUND, warmup: WARMUP, results }, null, 2)}\n`);
  } finally {
    for (const b of builds) {
      await stop(b.child.proc);
      rmSync(b.dataDir, { recursive: true, force: true });
    }
    await stop(standIn.proc);
  }
}

main().catch((err) => {
  process.stderr.write(`bench:compare failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
