import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Load generation and statistics shared by the gateway benchmark. */

/** One timed request: total and time to first token, in ms. */
export interface Sample {
  totalMs: number;
  ttftMs: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Nearest-rank percentiles. */
export function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  return { p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(s[s.length - 1]) };
}

export function summarize(samples: Sample[]): { total: Percentiles; ttft: Percentiles } {
  return { total: percentiles(samples.map((s) => s.totalMs)), ttft: percentiles(samples.map((s) => s.ttftMs)) };
}

/** `n` requests one after another, optionally `pauseMs` apart (idle time between the end of one and the next). */
export async function sequential(n: number, request: () => Promise<Sample>, pauseMs = 0): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    if (pauseMs > 0 && i > 0) await sleep(pauseMs);
    out.push(await request());
  }
  return out;
}

export interface LoadResult {
  concurrency: number;
  durationS: number;
  requests: number;
  errors: number;
  requestsPerSecond: number;
  latencyMs: Percentiles;
  firstError?: string;
}

/** A closed loop: `concurrency` workers, each sending its next request as soon as the previous one ends. */
export async function closedLoop(concurrency: number, durationMs: number, request: () => Promise<Sample>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      try {
        latencies.push((await request()).totalMs);
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  return {
    concurrency,
    durationS: round(elapsed, 2),
    requests: latencies.length + errors,
    errors,
    requestsPerSecond: Math.round(latencies.length / elapsed),
    latencyMs: percentiles(latencies.length ? latencies : [NaN]),
    ...(firstError ? { firstError } : {}),
  };
}

/** Reads /proc (Linux); elsewhere the process figures come out as null. */
const proc = (pid: number, file: string): string | null => {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
};

/** VmRSS and VmHWM (peak) of a process, in MB. */
export function memoryOf(pid: number): { rssMB: number | null; peakRssMB: number | null } {
  const status = proc(pid, 'status');
  if (status === null) return { rssMB: null, peakRssMB: null };
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMB: round(kb('VmRSS') / 1024, 1), peakRssMB: round(kb('VmHWM') / 1024, 1) };
}

/**
 * CPU time (user + system) used so far, in ms, from a /proc stat line. It counts in USER_HZ ticks, which Linux
 * fixes at 100 per second for userspace whatever the kernel's HZ.
 */
function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time a process has used so far, in ms (all its threads). */
export function cpuMsOf(pid: number): number {
  const stat = proc(pid, 'stat');
  return stat === null ? NaN : statCpuMs(stat);
}

/**
 * A process's CPU time so far split between its main thread (the request path) and its other threads (the local
 * runtime's store thread, GC helpers, libuv's pool), in ms.
 */
export function threadCpuMsOf(pid: number): { main: number; others: number } {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { main: NaN, others: NaN };
  }
  let main = 0;
  let others = 0;
  for (const tid of tids) {
    const stat = proc(pid, `task/${tid}/stat`);
    if (stat === null) continue; // the thread has ended
    if (Number(tid) === pid) main += statCpuMs(stat);
    else others += statCpuMs(stat);
  }
  return { main, others };
}

/** Samples a process's RSS every `everyMs` until stopped; returns the highest sample. */
export function sampleRss(pid: number, everyMs = 200): () => number | null {
  let max = 0;
  const timer = setInterval(() => {
    max = Math.max(max, memoryOf(pid).rssMB ?? NaN);
  }, everyMs);
  return () => {
    clearInterval(timer);
    const last = memoryOf(pid).rssMB;
    return last === null ? null : Math.max(max, last);
  };
}
