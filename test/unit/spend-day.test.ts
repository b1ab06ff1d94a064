import { isDay, shiftDay, spendDay } from '../../lambdas/core/spend-day';

const at = (iso: string) => new Date(iso);
const formats = new Map<string, Intl.DateTimeFormat>();
/** Reference implementation: en-CA formats dates as YYYY-MM-DD. */
function localDate(tz: string, d: Date): string {
  if (!formats.has(tz)) formats.set(tz, new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }));
  return formats.get(tz)!.format(d);
}

describe('spendDay', () => {
  it('follows the key time zone, not UTC', () => {
    // 04:59Z on Jan 15 is 23:59 on Jan 14 in Toronto (EST, UTC-5).
    expect(spendDay('America/Toronto', at('2025-01-15T04:59:00Z'))).toEqual({ day: '2025-01-14', resetsAt: at('2025-01-15T05:00:00Z') });
    expect(spendDay('America/Toronto', at('2025-01-15T05:01:00Z'))).toEqual({ day: '2025-01-15', resetsAt: at('2025-01-16T05:00:00Z') });
    expect(spendDay('UTC', at('2025-01-15T04:59:00Z'))).toEqual({ day: '2025-01-15', resetsAt: at('2025-01-16T00:00:00Z') });
  });

  it('handles the 23-hour spring-forward day and the 25-hour fall-back day (Toronto)', () => {
    // 2025-03-09: 02:00 EST → 03:00 EDT. The day began at 05:00Z and ends at 04:00Z (EDT) next day.
    expect(spendDay('America/Toronto', at('2025-03-09T12:00:00Z'))).toEqual({ day: '2025-03-09', resetsAt: at('2025-03-10T04:00:00Z') });
    expect(spendDay('America/Toronto', at('2025-03-08T12:00:00Z')).resetsAt).toEqual(at('2025-03-09T05:00:00Z'));
    // 2025-11-02: 02:00 EDT → 01:00 EST. The day began at 04:00Z and ends at 05:00Z next day.
    expect(spendDay('America/Toronto', at('2025-11-02T05:30:00Z'))).toEqual({ day: '2025-11-02', resetsAt: at('2025-11-03T05:00:00Z') });
    expect(spendDay('America/Toronto', at('2025-11-02T03:59:59Z')).day).toBe('2025-11-01');
  });

  it('handles Vancouver across DST', () => {
    expect(spendDay('America/Vancouver', at('2025-06-15T06:59:00Z'))).toEqual({ day: '2025-06-14', resetsAt: at('2025-06-15T07:00:00Z') });
    expect(spendDay('America/Vancouver', at('2025-12-15T07:59:00Z'))).toEqual({ day: '2025-12-14', resetsAt: at('2025-12-15T08:00:00Z') });
  });

  it('handles the half-hour offset of St. John\'s (UTC-3:30, UTC-2:30 in summer)', () => {
    expect(spendDay('America/St_Johns', at('2025-01-15T03:29:59Z'))).toEqual({ day: '2025-01-14', resetsAt: at('2025-01-15T03:30:00Z') });
    expect(spendDay('America/St_Johns', at('2025-01-15T03:30:00Z')).day).toBe('2025-01-15');
    expect(spendDay('America/St_Johns', at('2025-07-15T02:29:00Z'))).toEqual({ day: '2025-07-14', resetsAt: at('2025-07-15T02:30:00Z') });
  });

  it('resets at the first instant of the next day when local midnight does not exist (Santiago)', () => {
    // 2024-09-08 00:00 -04 jumps to 01:00 -03: the new day starts at 04:00Z, shown as 01:00.
    const { day, resetsAt } = spendDay('America/Santiago', at('2024-09-07T12:00:00Z'));
    expect(day).toBe('2024-09-07');
    expect(resetsAt).toEqual(at('2024-09-08T04:00:00Z'));
  });

  it('always resets at the first instant of a later local day', () => {
    const zones = ['America/Toronto', 'America/Vancouver', 'America/St_Johns', 'America/Halifax', 'America/Regina', 'Asia/Kolkata', 'Pacific/Chatham', 'UTC'];
    for (const tz of zones) {
      for (let t = Date.parse('2025-03-01T00:00:00Z'); t < Date.parse('2025-11-30T00:00:00Z'); t += 17 * 3_600_000 + 1_234_567) {
        const { day, resetsAt } = spendDay(tz, new Date(t));
        expect(day).toBe(localDate(tz, new Date(t)));
        expect(resetsAt.getTime()).toBeGreaterThan(t);
        expect(localDate(tz, new Date(resetsAt.getTime() - 1000))).toBe(day);
        expect(localDate(tz, resetsAt) > day).toBe(true);
      }
    }
  });

  it('gives the right day when asked about an earlier instant than the last call (cache)', () => {
    expect(spendDay('America/Halifax', at('2025-05-02T12:00:00Z')).day).toBe('2025-05-02');
    expect(spendDay('America/Halifax', at('2025-05-01T12:00:00Z')).day).toBe('2025-05-01');
    expect(spendDay('America/Halifax', at('2025-05-01T13:00:00Z')).day).toBe('2025-05-01');
    expect(spendDay('America/Halifax', at('2025-05-03T12:00:00Z')).day).toBe('2025-05-03');
  });
});

describe('day helpers', () => {
  it('shifts calendar days across months and leap days', () => {
    expect(shiftDay('2024-02-28', 1)).toBe('2024-02-29');
    expect(shiftDay('2025-03-01', -1)).toBe('2025-02-28');
    expect(shiftDay('2025-12-31', 1)).toBe('2026-01-01');
  });

  it('accepts real dates only', () => {
    expect(isDay('2024-02-29')).toBe(true);
    expect(isDay('2025-02-29')).toBe(false);
    expect(isDay('2025-1-01')).toBe(false);
    expect(isDay('yesterday')).toBe(false);
  });
});
