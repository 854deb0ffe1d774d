import type { DeliveryView } from '@herald/protocol';
import { timelineOf } from './notification-detail';

const delivery = (over: Partial<DeliveryView>): DeliveryView => ({
  userId: 'alice',
  status: 'pending',
  attempts: 0,
  firstSentAt: null,
  lastSentAt: null,
  ackedAt: null,
  updatedAt: '2026-11-25T10:00:05.000Z',
  ...over,
});

describe('timelineOf', () => {
  it('lists stored, sent, resent and acked in order', () => {
    const steps = timelineOf(
      '2026-11-25T10:00:00.000Z',
      delivery({
        status: 'acked',
        attempts: 2,
        firstSentAt: '2026-11-25T10:00:00.010Z',
        lastSentAt: '2026-11-25T10:00:10.000Z',
        ackedAt: '2026-11-25T10:00:10.050Z',
      }),
    );
    expect(steps.map((s) => s.label)).toEqual(['stored', 'first sent', 'sent again (attempt 2)', 'acked']);
  });

  it('ends with the end state when it was never acked', () => {
    const steps = timelineOf('2026-11-25T10:00:00.000Z', delivery({ status: 'expired' }));
    expect(steps.map((s) => s.label)).toEqual(['stored', 'expired']);
  });
});
