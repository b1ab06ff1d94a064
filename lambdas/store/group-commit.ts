import { config } from '../config';

/**
 * After-response writes (usage settles, custody events) of requests that finish close together share store
 * calls: the SDK costs CPU per call, not per item. NI_GROUP_COMMIT_MS is how long the first write of a group
 * waits for others to join it. 0, the default, starts at once: on Lambda an environment serves one request at
 * a time, so there is nobody to wait for. The local runtime, one process serving every request, sets it
 * (see local/gateway.ts): back-to-back requests then pay for a few calls per group, not a few per request.
 */

/** Ends a window of `ms` by calling `flush`. */
export type WindowTimer = (ms: number, flush: () => void) => void;

const timers: WindowTimer = (ms, flush) => void setTimeout(flush, ms);
let windowTimer = timers;

/** Who ends the windows from now on: tests end them by hand; `null` gives them back to the timers. */
export function useWindowTimer(timer: WindowTimer | null): void {
  windowTimer = timer ?? timers;
}

/** Runs `flush` once the window has passed (in a microtask for a zero window: writes of the same tick still share). */
export function afterWindow(flush: () => void): void {
  const ms = config().groupCommitMs;
  if (ms > 0) windowTimer(ms, flush);
  else queueMicrotask(flush);
}
