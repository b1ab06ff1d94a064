/**
 * Keeps every line this process writes to stdout and stderr while it is installed, passing them on. The store
 * thread's lines (the ledger writer's) reach this thread's stdout on their own schedule: `until` waits for one.
 */
export interface OutputCapture {
  readonly lines: string[];
  /** Resolves once a line for which `matches` holds has been written (at once if one has). */
  until(matches: (line: string) => boolean): Promise<void>;
  restore(): void;
}

export function captureOutput(): OutputCapture {
  const lines: string[] = [];
  let watchers: { matches: (line: string) => boolean; resolve: () => void }[] = [];
  const capture = (stream: NodeJS.WriteStream) => {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const added = String(chunk).split('\n').filter(Boolean);
      lines.push(...added);
      watchers = watchers.filter((w) => !(added.some(w.matches) && (w.resolve(), true)));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    return () => void (stream.write = write);
  };
  const restores = [capture(process.stdout), capture(process.stderr)];
  return {
    lines,
    until: (matches) => new Promise<void>((resolve) => {
      if (lines.some(matches)) return resolve();
      watchers.push({ matches, resolve });
    }),
    restore: () => restores.forEach((r) => r()),
  };
}
