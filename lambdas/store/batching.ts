/** How the stores cut work into the calls DynamoDB, EventBridge and SQS take. */

/**
 * Splits items, in order, into batches of at most `max` items and, with `bytes`, at most `bytes.max` bytes each
 * (an item larger than that goes alone).
 */
export function batches<T>(items: T[], max: number, bytes?: { of: (item: T) => number; max: number }): T[][] {
  const out: T[][] = [];
  let size = Infinity;
  for (const item of items) {
    const b = bytes ? bytes.of(item) : 0;
    const last = out.at(-1);
    if (!last || last.length >= max || (bytes !== undefined && size + b > bytes.max)) {
      out.push([item]);
      size = b;
    } else {
      last.push(item);
      size += b;
    }
  }
  return out;
}

/** Items grouped by key, groups in the order their first item came. */
export function groupBy<T>(items: T[], key: (t: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const group = groups.get(k);
    if (group) group.push(t);
    else groups.set(k, [t]);
  }
  return [...groups.values()];
}

/** `fn` over `items`, at most `n` at a time, results in order. */
export async function inWaves<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const wave of batches(items, n)) out.push(...await Promise.all(wave.map(fn)));
  return out;
}
