/**
 * Gateway overhead: the same streamed requests (a) straight to the Bedrock stand-in with the AWS SDK and (b) through
 * the local gateway with the official openai client, every stage on (authorizer, spend reservation, PII scan,
 * usage settle, custody event → local EventBridge → ledger writer). Stand-in, gateway and this load generator are
 * three processes on loopback, the stand-in answering with no artificial delay. A bare relay (serve.ts relay) is
 * measured the same way beside it, as the floor.
 *
 * BENCH_CPU_PROF=<dir> runs the gateway child with --cpu-prof and leaves its profile in <dir>; BENCH_QUICK=1 sends
 * fewer requests (for trying a change).
 *
 * BENCH_PORTKEY=<path> also measures Portkey's open-source gateway the same way, in its own process against the same
 * stand-in: npm install @portkey-ai/gateway somewhere outside the project and point BENCH_PORTKEY at its
 * build/start-server.js (measured with 1.15.2).
 */
import { BedrockRuntimeClient, ConverseStreamCommand, type ConverseStreamCommandInput } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import OpenAI from 'openai';
import { resolveModel } from '../lambdas/core/catalog';
import { catalog } from '../lambdas/catalog';
import { toConverseInput } from '../lambdas/providers/bedrock/converse';
import { parseChatRequest } from '../lambdas/core/openai';
import { loopbackClientConfig } from '../local/loopback';
import { buildLocalRuntime, LOCAL_BUILD_ROOT, START_FLAGS } from '../local/build';
import { closedLoop, cpuMsOf, memoryOf, sampleRss, sequential, summarize, type Sample } from './load';
import { portkeyHeaders, settled, startPortkey, type Portkey } from './portkey';

const MODEL = 'meta/llama-3-70b';
const TIER = 'global';
const PII_PROMPT = 'ni-standin:echo Please email jane.tremblay@northwind.ca or call (613) 555-0142 today.';
const PROMPTS = {
  short: { prompt: 'Say hello.', reply: 'Hello from the Bedrock stand-in.' },
  long: { prompt: 'Say hello. ni-standin:words=200', reply: null },
  // Substitution on: two values replaced going up, restored in the echoed stream coming back.
  pii: { prompt: PII_PROMPT, reply: PII_PROMPT },
} as const;
type PromptName = keyof typeof PROMPTS;

/** A gateway under test, in its own process, reached with the openai client. */
interface Path {
  name: 'gateway' | 'portkey' | 'relay';
  pid: number;
  send: (name: PromptName) => Promise<Sample>;
  /** Resolves once the process has finished the work it does after responding. */
  settle: () => Promise<unknown>;
}

const CONFIG = process.env.BENCH_QUICK // fewer requests, for trying a change; the figures to quote come without it
  ? { jitWarmupSeconds: 5, warmup: 100, sequential: 300, rounds: 3, spaced: 100, spacedPauseMs: 20, concurrency: 32, loadSeconds: 5 }
  : { jitWarmupSeconds: 20, warmup: 200, sequential: 1500, rounds: 5, spaced: 300, spacedPauseMs: 20, concurrency: 32, loadSeconds: 10 };

/** Measured elsewhere (Portkey's published numbers for its open-source gateway); printed for comparison only. */
const REFERENCE = {
  name: 'Portkey open-source gateway (published, other hardware)',
  addedLatencyMs: { p50: 1.15, p99: 5.3 },
  requestsPerSecondAt32: 1300,
  rssMB: 225,
};
const TARGETS = { addedP50Ms: 1, addedP99Ms: 3, ttftOverheadMs: 1 };

const log = (msg: string) => process.stderr.write(`[bench:gateway] ${msg}\n`);

export interface Child {
  proc: ChildProcess;
  info: Record<string, string | number>;
}

/** Forks the bundled `serve.ts <mode>` (bundled as `npm start` runs the gateway) and waits for its ready line. */
export function startChild(serveJs: string, mode: 'standin' | 'standins' | 'gateway' | 'relay', env: NodeJS.ProcessEnv, extraExecArgv: string[] = []): Promise<Child> {
  const proc = fork(serveJs, [mode], {
    execArgv: extraExecArgv,
    env,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  return new Promise((resolveReady, reject) => {
    let out = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) resolveReady({ proc, info: JSON.parse(out.slice(0, nl)) });
    });
    proc.once('exit', (code) => reject(new Error(`bench ${mode} exited with ${code} before it was ready`)));
  });
}

/**
 * The bundled gateway (`serve.ts gateway`) against the Bedrock stand-in, as the bench measures it: quiet logs, no
 * EMF lines, its own data folder; with `profDir`, run under --cpu-prof writing there.
 */
export function startGatewayChild(serveJs: string, standInUrl: string, dataDir: string, profDir?: string): Promise<Child> {
  return startChild(serveJs, 'gateway', {
    ...process.env,
    NI_BEDROCK_ENDPOINT: standInUrl,
    NI_SIMULATED_PROVIDERS: 'bedrock',
    NI_LOG_LEVEL: 'WARN',
    NI_METRICS: 'off',
    NI_DATA_DIR: dataDir,
  }, [...START_FLAGS, ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])]);
}

/** One streamed chat completion through a gateway with the openai client: its duration and time to first token. */
export async function streamViaOpenAI(openai: OpenAI, model: string, prompt: string, collect?: string[]): Promise<Sample> {
  const t0 = performance.now();
  let ttftMs = NaN;
  const stream = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], stream: true });
  for await (const chunk of stream) {
    const content = chunk.choices[0]?.delta?.content;
    if (content) {
      if (Number.isNaN(ttftMs)) ttftMs = ms(t0);
      collect?.push(content);
    }
  }
  return { totalMs: ms(t0), ttftMs };
}

/** Sends an IPC command to the gateway child and waits for its answer. */
export function ask<T>(proc: ChildProcess, cmd: string): Promise<T> {
  return new Promise((resolveAnswer, reject) => {
    proc.once('message', (m: { stats?: T; drained?: true; error?: string }) => (m.error ? reject(new Error(m.error)) : resolveAnswer((m.stats ?? m) as T)));
    proc.send({ cmd });
  });
}

export function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    proc.once('exit', () => done());
    if (proc.connected) proc.send({ cmd: 'stop' });
    else proc.kill('SIGTERM');
  });
}

const ms = (t0: number) => performance.now() - t0;
const round = (n: number) => Math.round(n * 1000) / 1000;

/** Gateway (b) against direct (a): the added latency and TTFT overhead, with the targets. */
export function compare(a: ReturnType<typeof summarize>, b: ReturnType<typeof summarize>) {
  const added = { p50: round(b.total.p50 - a.total.p50), p99: round(b.total.p99 - a.total.p99) };
  const ttftOverhead = { p50: round(b.ttft.p50 - a.ttft.p50), p99: round(b.ttft.p99 - a.ttft.p99) };
  return {
    directMs: a,
    gatewayMs: b,
    addedLatencyMs: added,
    ttftOverheadMs: ttftOverhead,
    targets: {
      addedP50: { targetMs: TARGETS.addedP50Ms, measuredMs: added.p50, pass: added.p50 <= TARGETS.addedP50Ms },
      addedP99: { targetMs: TARGETS.addedP99Ms, measuredMs: added.p99, pass: added.p99 <= TARGETS.addedP99Ms },
      ttftOverheadP50: { targetMs: TARGETS.ttftOverheadMs, measuredMs: ttftOverhead.p50, pass: ttftOverhead.p50 <= TARGETS.ttftOverheadMs },
    },
  };
}

export async function gatewayBench(): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ni-bench-'));
  const profDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;
  let standIn: Child | undefined;
  let gw: Child | undefined;
  let pk: Portkey | undefined;
  let relay: Child | undefined;
  try {
    const serveJs = await buildLocalRuntime(join(__dirname, 'serve.ts'), join(LOCAL_BUILD_ROOT, 'bench'));
    standIn = await startChild(serveJs, 'standin', { ...process.env });
    const standInUrl = String(standIn.info.url);
    gw = await startGatewayChild(serveJs, standInUrl, dataDir, profDir);
    const gwPid = Number(gw.info.pid);
    log(`stand-in ${standInUrl} (pid ${standIn.info.pid}), gateway ${gw.info.url} (pid ${gwPid})`);

    // (a) straight to the stand-in: the request body the gateway would send, over HTTP/1.1 keep-alive, with the
    // client set up as the gateway's own (lambdas/providers/bedrock.ts), so that only the gateway's work differs.
    const { model, routes } = resolveModel(catalog(), MODEL, TIER);
    const route = routes[0];
    const bedrock = new BedrockRuntimeClient({
      region: route.region,
      maxAttempts: 1,
      cacheMiddleware: true,
      ...loopbackClientConfig(standInUrl, 'bedrock'),
      requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }) }),
    });
    const converseInputs = Object.fromEntries(Object.entries(PROMPTS).map(([name, p]) => {
      const chat = parseChatRequest(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: p.prompt }], stream: true }));
      return [name, toConverseInput(chat, route.upstream_id, model.max_output_tokens) as unknown as ConverseStreamCommandInput];
    })) as Record<PromptName, ConverseStreamCommandInput>;

    const direct = async (name: PromptName, collect?: string[]): Promise<Sample> => {
      const t0 = performance.now();
      let ttftMs = NaN;
      const out = await bedrock.send(new ConverseStreamCommand(converseInputs[name]));
      for await (const event of out.stream!) {
        if (event.contentBlockDelta) {
          if (Number.isNaN(ttftMs)) ttftMs = ms(t0);
          collect?.push(event.contentBlockDelta.delta?.text ?? '');
        }
      }
      return { totalMs: ms(t0), ttftMs };
    };

    // (b) through a gateway with the openai client.
    const viaOpenAI = (openai: OpenAI, model: string, name: PromptName, collect?: string[]) => streamViaOpenAI(openai, model, PROMPTS[name].prompt, collect);
    // Ours with the key without a cap, the capped one or the one with request limits; every request counted, to
    // check that each reached the store.
    const clientFor = (secret: unknown) => new OpenAI({ baseURL: `${gw!.info.url}/v1`, apiKey: String(secret), maxRetries: 0 });
    const uncapped = clientFor(gw.info.secret);
    const capped = clientFor(gw.info.cappedSecret);
    const limited = clientFor(gw.info.limitedSecret);
    let gatewayRequests = 0;
    const viaGateway = (name: PromptName, collect?: string[], openai = uncapped): Promise<Sample> => {
      gatewayRequests++;
      return viaOpenAI(openai, MODEL, name, collect);
    };
    const drain = () => ask(gw!.proc, 'drain');
    const gateway: Path = { name: 'gateway', pid: gwPid, send: (name) => viaGateway(name), settle: drain };

    // Both paths must return the same text, or the comparison means nothing.
    const checkReply = async (name: PromptName, via: (collect: string[]) => Promise<Sample>, what: string) => {
      const a: string[] = [];
      const b: string[] = [];
      await direct(name, a);
      await via(b);
      const expected = PROMPTS[name].reply ?? a.join('');
      if (a.join('') !== expected || b.join('') !== expected) throw new Error(`the ${name} reply differs between the stand-in and ${what}`);
    };
    for (const name of Object.keys(PROMPTS) as PromptName[]) await checkReply(name, (b) => viaGateway(name, b), 'the gateway');
    // V8 goes on optimizing the bundle's code for the first few thousand requests (seen with --trace-opt: about
    // 4,000 back-to-back requests); a gateway in service has long passed that, so the figures come after it.
    log(`JIT warm-up: ${CONFIG.jitWarmupSeconds} s per path of mixed prompts, 8 concurrent`);
    const names = Object.keys(PROMPTS) as PromptName[];
    let turn = 0;
    const jitWarmUp = async (path: Pick<Path, 'send' | 'settle'>) => {
      await closedLoop(8, CONFIG.jitWarmupSeconds * 1000, () => path.send(names[turn++ % names.length]));
      await path.settle();
    };
    await jitWarmUp({ send: (name) => direct(name), settle: async () => undefined });
    await jitWarmUp(gateway);

    type Series = ReturnType<typeof compare> & { prompt: string; pauseMs?: number; gatewayCpuMsPerRequest?: number };
    const sequentialResults = {} as Record<PromptName | 'shortCappedKey' | 'shortDefaultLimitsKey' | 'shortSpaced', Series>;
    // The host's speed drifts (a shared VM): each path's requests are taken in rounds that alternate with the
    // other's, and percentiles come from all rounds pooled, so a slow spell weighs on both paths alike.
    const perRound = Math.ceil(CONFIG.sequential / CONFIG.rounds);
    const backToBack = async (name: PromptName, path: Path): Promise<Series> => {
      await sequential(CONFIG.warmup, () => direct(name));
      await sequential(CONFIG.warmup, () => path.send(name));
      await path.settle();
      const a: Sample[] = [];
      const b: Sample[] = [];
      let cpuMs = 0;
      for (let r = 0; r < CONFIG.rounds; r++) {
        a.push(...await sequential(perRound, () => direct(name)));
        const cpu0 = cpuMsOf(path.pid);
        b.push(...await sequential(perRound, () => path.send(name)));
        await path.settle(); // its after-response work is its cost, and must not run into the next direct round
        cpuMs += cpuMsOf(path.pid) - cpu0;
      }
      return { prompt: PROMPTS[name].prompt, ...compare(summarize(a), summarize(b)), gatewayCpuMsPerRequest: round(cpuMs / b.length) };
    };
    for (const name of Object.keys(PROMPTS) as PromptName[]) {
      log(`sequential ${name}: warm-up ${CONFIG.warmup} + ${CONFIG.rounds} rounds of ${perRound} requests per path`);
      sequentialResults[name] = await backToBack(name, gateway);
    }
    // A key with a daily cap reserves its worst case in one conditional write before calling upstream.
    log(`sequential short, capped key: warm-up ${CONFIG.warmup} + ${CONFIG.rounds} rounds of ${perRound} requests per path`);
    sequentialResults.shortCappedKey = await backToBack('short', { ...gateway, send: (name) => viaGateway(name, undefined, capped) });
    // A key with request limits (every key by default) counts the request in one conditional write before calling upstream.
    log(`sequential short, key with the default limits: warm-up ${CONFIG.warmup} + ${CONFIG.rounds} rounds of ${perRound} requests per path`);
    sequentialResults.shortDefaultLimitsKey = await backToBack('short', { ...gateway, send: (name) => viaGateway(name, undefined, limited) });
    // Back to back, each request arrives while the previous one's after-response work (usage settle, custody
    // event, ledger append, the embedded store serving them) still runs in the same process; on Lambda that
    // work finishes inside the invocation before the environment takes another request. Spaced requests show
    // the request path alone.
    log(`spaced: ${CONFIG.spaced} short requests per path, ${CONFIG.spacedPauseMs} ms apart`);
    const spacedA = summarize(await sequential(CONFIG.spaced, () => direct('short'), CONFIG.spacedPauseMs));
    const spacedB = summarize(await sequential(CONFIG.spaced, () => viaGateway('short'), CONFIG.spacedPauseMs));
    await drain();
    sequentialResults.shortSpaced = { prompt: PROMPTS.short.prompt, pauseMs: CONFIG.spacedPauseMs, ...compare(spacedA, spacedB) };

    log(`throughput: ${CONFIG.concurrency} concurrent for ${CONFIG.loadSeconds} s, direct then gateway`);
    const loadMs = CONFIG.loadSeconds * 1000;
    // CPU per request of each process: what the 2 cores are shared between.
    const standInPid = Number(standIn.info.pid);
    const cpuOf = (path: Path) => ({ loadGenerator: process.cpuUsage(), standIn: cpuMsOf(standInPid), path: cpuMsOf(path.pid) });
    const cpuPerRequest = (path: Path, from: ReturnType<typeof cpuOf>, requests: number) => {
      const own = process.cpuUsage(from.loadGenerator);
      return {
        loadGenerator: round((own.user + own.system) / 1000 / requests),
        standIn: round((cpuMsOf(standInPid) - from.standIn) / requests),
        [path.name]: round((cpuMsOf(path.pid) - from.path) / requests),
      };
    };
    /** The closed loop of short prompts through a path, with its process's CPU and memory. */
    const loadOn = async (path: Path) => {
      const rssBefore = memoryOf(path.pid);
      const stopSampling = sampleRss(path.pid);
      const from = cpuOf(path);
      const load = await closedLoop(CONFIG.concurrency, loadMs, () => path.send('short'));
      const cpuMsPerRequestDuringLoad = cpuPerRequest(path, from, load.requests);
      const rssDuringMaxMB = stopSampling();
      const settleStart = performance.now();
      await path.settle();
      return {
        load,
        cpuMsPerRequestDuringLoad,
        settleMs: Math.round(ms(settleStart)),
        // With the after-response work the load left queued.
        cpuMsPerRequest: round((cpuMsOf(path.pid) - from.path) / load.requests),
        rssBeforeMB: rssBefore.rssMB,
        rssDuringMaxMB,
      };
    };
    const cpuFrom = cpuOf(gateway);
    const directLoad = await closedLoop(CONFIG.concurrency, loadMs, () => direct('short'));
    const directCpuMsPerRequest = cpuPerRequest(gateway, cpuFrom, directLoad.requests);
    const { load: gatewayLoad, cpuMsPerRequestDuringLoad: gatewayLoadCpu, settleMs: drainMs, cpuMsPerRequest: gatewayCpuMsPerRequest, rssBeforeMB, rssDuringMaxMB } = await loadOn(gateway);
    // Memory first: counting what reached the store reads the whole ledger in the gateway's process.
    const rssAfter = memoryOf(gwPid);
    const store = await ask<Record<string, number | object>>(gw.proc, 'stats');

    /** Another path measured as the gateway is: JIT warm-up, short prompt back to back, closed loop at 32. */
    const measureBeside = async (path: Path) => {
      await jitWarmUp(path);
      const short = await backToBack('short', path);
      const { load, cpuMsPerRequestDuringLoad, cpuMsPerRequest, rssBeforeMB: beforeLoad, rssDuringMaxMB: duringLoadMax } = await loadOn(path);
      const after = memoryOf(path.pid);
      // Our targets are left out: they are the gateway's.
      return {
        sequentialShort: {
          prompt: short.prompt,
          directMs: short.directMs,
          [`${path.name}Ms`]: short.gatewayMs,
          addedLatencyMs: short.addedLatencyMs,
          ttftOverheadMs: short.ttftOverheadMs,
          cpuMsPerRequest: short.gatewayCpuMsPerRequest,
        },
        throughput: { ...load, cpuMsPerRequestDuringLoad, cpuMsPerRequest, noErrors: load.errors === 0 },
        memoryMB: { beforeLoad, duringLoadMax, afterLoad: after.rssMB, peakVmHWM: after.peakRssMB },
      };
    };
    /** The headline figures of a path measured beside the gateway. */
    const headline = (m: Awaited<ReturnType<typeof measureBeside>>) => ({
      addedLatencyMs: m.sequentialShort.addedLatencyMs,
      ttftOverheadMs: { p50: m.sequentialShort.ttftOverheadMs.p50 },
      requestsPerSecondAt32: m.throughput.requestsPerSecond,
      cpuMsPerRequest: m.throughput.cpuMsPerRequest,
      peakRssMB: m.memoryMB.peakVmHWM,
    });

    // The floor: the gateway's provider client and mapping alone (serve.ts relay), so the difference is what the
    // rest (event shim, authorizer, spend, PII, usage, custody) costs.
    relay = await startChild(serveJs, 'relay', { ...process.env, NI_BEDROCK_ENDPOINT: standInUrl, NI_SIMULATED_PROVIDERS: 'bedrock' }, START_FLAGS);
    const relayPid = Number(relay.info.pid);
    const relayOpenAI = new OpenAI({ baseURL: `${relay.info.url}/v1`, apiKey: 'unused-by-the-relay', maxRetries: 0 });
    const relayPath: Path = { name: 'relay', pid: relayPid, send: (name) => viaOpenAI(relayOpenAI, MODEL, name), settle: () => settled(relayPid) };
    await checkReply('short', (b) => viaOpenAI(relayOpenAI, MODEL, 'short', b), 'the bare relay');
    log(`bare relay ${relay.info.url} (pid ${relayPid}): JIT warm-up ${CONFIG.jitWarmupSeconds} s, sequential short ${CONFIG.rounds} rounds of ${perRound}, throughput ${CONFIG.loadSeconds} s`);
    const bareRelay = {
      setup: 'serve.ts relay: the gateway\'s Bedrock client (lambdas/providers/bedrock/) and OpenAI⇄Converse mapping in a plain node:http server, run with npm start\'s node flags; no API Gateway event, authorizer, spend, PII, usage or custody',
      ...await measureBeside(relayPath),
    };
    await stop(relay.proc);

    const portkey = process.env.BENCH_PORTKEY ? await (async () => {
      pk = await startPortkey(resolve(process.env.BENCH_PORTKEY!), join(dataDir, 'portkey.log'));
      const pkPid = pk.pid;
      log(`Portkey ${pk.version ?? '(version unknown)'} ${pk.url} (pid ${pkPid})`);
      const headers = portkeyHeaders(route.region, standInUrl);
      const openai = new OpenAI({ baseURL: `${pk.url}/v1`, apiKey: 'unused-by-the-stand-in', maxRetries: 0, defaultHeaders: headers });
      const path: Path = { name: 'portkey', pid: pkPid, send: (name) => viaOpenAI(openai, route.upstream_id, name), settle: () => settled(pkPid) };
      await checkReply('short', (b) => viaOpenAI(openai, route.upstream_id, 'short', b), 'Portkey');
      log(`Portkey: JIT warm-up ${CONFIG.jitWarmupSeconds} s, sequential short ${CONFIG.rounds} rounds of ${perRound}, throughput ${CONFIG.loadSeconds} s`);
      return {
        setup: {
          portkey: `@portkey-ai/gateway ${pk.version ?? '(version unknown)'}: ${pk.command}`,
          headers,
          auth: 'x-portkey-aws-auth-type: apiKey, so Portkey does not sign its upstream calls with SigV4 (the gateway skips SigV4 on loopback too)',
          request: `openai client, stream: true, model ${route.upstream_id}`,
          stderr: 'kept out of the bench\'s output, in its temporary folder (1.15.2 writes a stack trace there for every streamed Bedrock reply)',
          measured: 'as the gateway: same JIT warm-up, short prompt back to back in rounds alternating with direct, closed loop at 32; its after-response work waited for by its CPU time going still',
        },
        ...await measureBeside(path),
      };
    })() : null;
    bedrock.destroy();

    const lost = {
      ledgerEntries: gatewayRequests - Number(store.ledgerEntries),
      usageRecords: gatewayRequests - Number(store.usageRecords),
    };
    const short = sequentialResults.short;
    return {
      // The headline: short prompt, back to back (the spaced figure beside it: see the comment above).
      summary: {
        addedLatencyMs: short.addedLatencyMs,
        addedLatencySpacedMs: sequentialResults.shortSpaced.addedLatencyMs,
        addedLatencyCappedKeyMs: sequentialResults.shortCappedKey.addedLatencyMs,
        addedLatencyDefaultLimitsMs: sequentialResults.shortDefaultLimitsKey.addedLatencyMs,
        ttftOverheadMs: short.ttftOverheadMs,
        ttftOverheadWithPiiSubstitutionMs: sequentialResults.pii.ttftOverheadMs,
        requestsPerSecondAt32: gatewayLoad.requestsPerSecond,
        gatewayCpuMsPerRequest,
        peakRssMB: rssAfter.peakRssMB,
        targets: {
          ...short.targets,
          noErrorsUnderLoad: { pass: gatewayLoad.errors === 0 },
          nothingLost: { pass: lost.ledgerEntries === 0 && lost.usageRecords === 0 && store.outstandingReservations === 0 },
        },
        reference: REFERENCE,
        bareRelayMeasuredHere: headline(bareRelay),
        portkeyMeasuredHere: portkey && headline(portkey),
      },
      setup: {
        model: MODEL,
        upstream: route.upstream_id,
        tier: TIER,
        transport: 'loopback; stand-in, gateway and load generator in three processes',
        direct: 'AWS SDK BedrockRuntimeClient ConverseStream configured as the gateway\'s (loopback: unsigned; cached middleware; NodeHttpHandler HTTP/1.1 keep-alive; maxAttempts 1)',
        gateway: 'openai client, stream: true; authorizer + spend reservation (capped key) or request limits\' write (key with limits) + PII scan + usage settle + custody bus + ledger writer',
        ...CONFIG,
        cpuProfileDir: profDir ?? null,
      },
      sequential: sequentialResults,
      throughput: {
        direct: { ...directLoad, cpuMsPerRequestDuringLoad: directCpuMsPerRequest },
        gateway: { ...gatewayLoad, cpuMsPerRequestDuringLoad: gatewayLoadCpu, gatewayCpuMsPerRequest },
        noErrors: gatewayLoad.errors === 0,
      },
      gatewayMemoryMB: {
        beforeLoad: rssBeforeMB,
        duringLoadMax: rssDuringMaxMB,
        afterDrain: rssAfter.rssMB,
        peakVmHWM: rssAfter.peakRssMB,
        note: 'the whole local runtime, bundled as npm start runs it: handlers, bus, embedded DynamoDB (LevelDB on disk) with the ledger writer on its thread; the handler alone: bundle.gateway.rssAfterRequireMB',
      },
      custody: {
        requestsSent: gatewayRequests,
        drainAfterLoadMs: drainMs,
        ...store,
        lost,
        nothingLost: lost.ledgerEntries === 0 && lost.usageRecords === 0 && store.outstandingReservations === 0,
      },
      bareRelay,
      portkey,
    };
  } finally {
    if (pk) await stop(pk.proc);
    if (relay) await stop(relay.proc);
    if (gw) await stop(gw.proc);
    if (standIn) await stop(standIn.proc);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
