import { LatestProgress, ProgressEvent } from './progress';

const progress = (id: string, at: string, acked: number): ProgressEvent => ({
  type: 'notification.progress',
  id,
  at,
  recipients: 2,
  counts: { pending: 0, sent: 2 - acked, acked, expired: 0, failed: 0 },
});

describe('LatestProgress', () => {
  it('keeps the newest reading of each notification, whatever the arrival order', () => {
    const latest = new LatestProgress();
    expect(latest.offer(progress('n1', '2026-11-25T10:00:00.200Z', 2))).toBe(true);
    expect(latest.offer(progress('n1', '2026-11-25T10:00:00.100Z', 1))).toBe(false);
    expect(latest.get('n1')?.counts.acked).toBe(2);
    expect(latest.offer(progress('n2', '2026-11-25T10:00:00.000Z', 0))).toBe(true);
  });

  it('forgets the oldest notifications beyond its capacity', () => {
    const latest = new LatestProgress(2);
    for (const id of ['a', 'b', 'c']) latest.offer(progress(id, '2026-11-25T10:00:00.000Z', 0));
    expect([latest.get('a'), latest.get('c')?.id]).toEqual([undefined, 'c']);
  });
});
