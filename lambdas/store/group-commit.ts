import { config } from '../config';

/**
 * After-response writes (usage settles, custody events) of requests that finish close together share store
 * calls: the SDK costs CPU per call, not per item. NI_GROUP_COMMIT_MS is how long the first write of a group
 * waits for others to join it. 0, the default, starts at once: on Lambda an environment serves one request at
 * a time, so there is nobody to wait for. The local runtime, one process serving every request, sets it
 * (see local/gateway.ts): back-to-back requests then pay for a few calls per group, not a few per request.
 */

/** Runs `flush` once the window has passed (in a microtask for a zero window: writes of the same tick still share). */
export function afterWindow(flush: () => void): void {
  const ms = config().groupCommitMs;
  if (ms > 0) setTimeout(flush, ms);
  else queueMicrotask(flush);
}
