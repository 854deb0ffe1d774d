import { partitionWidthMs, retentionIntervalMs, windowAt, windowsToMake } from './partition-plan';

const S = 1000;
const H = 3_600_000;

describe('partition plan', () => {
  it('makes windows about a twelfth of the retention, from 1 s to a day', () => {
    expect(partitionWidthMs(168 * H)).toBe(12 * H);
    expect(partitionWidthMs(24 * H)).toBe(2 * H);
    expect(partitionWidthMs(60 * S)).toBe(5 * S);
    expect(partitionWidthMs(3.6 * S)).toBe(S);
    expect(partitionWidthMs(10 * 365 * 24 * H)).toBe(24 * H);
  });

  it('runs every quarter window, from 200 ms to a minute', () => {
    expect(retentionIntervalMs(S)).toBe(250);
    expect(retentionIntervalMs(12 * H)).toBe(60 * S);
    expect(retentionIntervalMs(100)).toBe(200);
  });

  it('names a window by its start in UTC', () => {
    expect(windowAt(Date.UTC(2026, 11, 7, 12, 0, 0), 12 * H)).toEqual({
      suffix: 'p20261207t120000',
      startsAt: Date.UTC(2026, 11, 7, 12),
      endsAt: Date.UTC(2026, 11, 8, 0),
    });
    expect(windowAt(Date.UTC(2026, 11, 7, 12, 0, 0, 500), S).suffix).toBe('p20261207t120000500');
  });

  it('covers now and three windows ahead, continuing from the last window made without a gap or overlap', () => {
    const now = Date.UTC(2026, 11, 7, 13, 30);
    const first = windowsToMake(now, 12 * H, null);
    expect(first.map((w) => w.suffix)).toEqual([
      'p20261207t120000',
      'p20261208t000000',
      'p20261208t120000',
      'p20261209t000000',
    ]);
    // A run later: only what the horizon moved over.
    expect(windowsToMake(now + 12 * H, 12 * H, first[3]!.endsAt).map((w) => w.suffix)).toEqual(['p20261209t120000']);
    // Nothing when the horizon is covered.
    expect(windowsToMake(now, 12 * H, first[3]!.endsAt)).toEqual([]);
    // After a long stop: from the window holding now (the gap between is the history's).
    expect(windowsToMake(now + 100 * H, 12 * H, first[3]!.endsAt)[0]!.startsAt).toBe(Date.UTC(2026, 11, 11, 12));
  });
});
