/**
 * A key's spend day: the calendar date in the key's IANA time zone. Caps reset at local midnight, which is
 * found by search rather than arithmetic so DST days (23 or 25 hours), half-hour offsets and zones whose
 * midnight is skipped all come out right.
 */
export interface SpendDay {
  /** YYYY-MM-DD in the key's time zone. */
  day: string;
  /** The first instant of the next local day (the cap resets then). */
  resetsAt: Date;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timezone, f);
  }
  return f;
}

/** The local date at `ms` as YYYY-MM-DD (lexical order is date order). */
function localDay(f: Intl.DateTimeFormat, ms: number): string {
  let y = '', m = '', d = '';
  for (const p of f.formatToParts(ms)) {
    if (p.type === 'year') y = p.value;
    else if (p.type === 'month') m = p.value;
    else if (p.type === 'day') d = p.value;
  }
  return `${y}-${m}-${d}`;
}

/** Longest a local day can last (25 h on a fall-back day) plus slack; the search upper bound. */
const MAX_DAY_MS = 27 * 3_600_000;

/** Last result per zone: valid for any instant from the one it was computed at up to its reset. */
const lastByZone = new Map<string, { from: number; day: string; resetsAt: Date }>();

export function spendDay(timezone: string, now: Date): SpendDay {
  const t = now.getTime();
  const cached = lastByZone.get(timezone);
  if (cached && cached.from <= t && t < cached.resetsAt.getTime()) return { day: cached.day, resetsAt: cached.resetsAt };

  const f = formatter(timezone);
  const day = localDay(f, t);
  // Offsets are whole seconds, so the boundary is a whole second: binary search seconds in (t, t + MAX_DAY_MS].
  let lo = Math.floor(t / 1000);
  let hi = Math.floor((t + MAX_DAY_MS) / 1000);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localDay(f, mid * 1000) > day) hi = mid;
    else lo = mid;
  }
  const resetsAt = new Date(hi * 1000);
  lastByZone.set(timezone, { from: t, day, resetsAt });
  return { day, resetsAt };
}

/** `day` moved by `n` calendar days (YYYY-MM-DD in, YYYY-MM-DD out). */
export function shiftDay(day: string, n: number): string {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** A real calendar date written YYYY-MM-DD. */
export const isDay = (s: string): boolean => /^\d{4}-\d{2}-\d{2}$/.test(s) && shiftDay(s, 0) === s;
