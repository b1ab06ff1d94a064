import { useWindowTimer } from '../../lambdas/store/group-commit';

/** Group-commit windows (lambdas/store/group-commit.ts) that stay open until the test ends them. */
export interface ManualWindows {
  /** How many windows are open now. */
  readonly open: number;
  /** The length each window was opened with, in order. */
  readonly lengths: number[];
  /** Resolves once a window is open (at once if one is). */
  opened(): Promise<void>;
  /** Ends every window open now; windows opened by their flushes stay open. */
  end(): void;
  /** Ends every open window and gives later ones back to the timers. */
  restore(): void;
}

/** From now on, every group-commit window (of a non-zero NI_GROUP_COMMIT_MS) waits for the test to end it. */
export function manualWindows(): ManualWindows {
  const flushes: (() => void)[] = [];
  const lengths: number[] = [];
  let waiting: (() => void)[] = [];
  useWindowTimer((ms, flush) => {
    flushes.push(flush);
    lengths.push(ms);
    for (const w of waiting.splice(0)) w();
  });
  const end = () => {
    for (const flush of flushes.splice(0)) flush();
  };
  return {
    get open() {
      return flushes.length;
    },
    lengths,
    opened: () => (flushes.length ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve))),
    end,
    restore() {
      useWindowTimer(null);
      waiting = [];
      end();
    },
  };
}
