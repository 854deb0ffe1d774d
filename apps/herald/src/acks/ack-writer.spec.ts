import type { AckRecord } from '../metrics/metrics.service';
import type { DeliveryRepository } from '../record/delivery.repository';
import type { AckResult } from '../record/notification.types';
import type { StreamAck, StreamRepository } from '../record/stream.repository';
import { AckWriter } from './ack-writer';

type Ack = { notificationId: string; userId: string };

/** Repositories stubbed at their boundary: the stream knows `s-*` notifications, the rows `r-*`. */
function writer() {
  const written: { record: AckRecord; acks: number; seconds: number }[] = [];
  const flushed: number[] = [];
  const rows = {
    ackMany: (items: Ack[]) =>
      Promise.resolve(
        items.map((i): AckResult =>
          i.notificationId.startsWith('r-')
            ? { outcome: 'acked', changed: true }
            : { outcome: 'unknown', changed: false },
        ),
      ),
  };
  const stream = {
    ackMany: (items: Ack[]) =>
      Promise.resolve(
        items.map((i): StreamAck => ({ outcome: i.notificationId.startsWith('s-') ? 'acked' : 'unknown' })),
      ),
  };
  const acks = new AckWriter(rows as unknown as DeliveryRepository, stream as unknown as StreamRepository, {
    ackWritten: (record, n, seconds) => written.push({ record, acks: n, seconds }),
    ackFlushed: (seconds) => flushed.push(seconds),
  });
  return { acks, written, flushed };
}

describe('AckWriter', () => {
  it('observes each statement of a flush by record, and the flush once with its oldest ack’s wait', async () => {
    const { acks, written, flushed } = writer();
    acks.sentFromStream('s-1');
    const results = await Promise.all([
      acks.add({ notificationId: 's-1', userId: 'u1' }),
      acks.add({ notificationId: 'r-1', userId: 'u1' }),
      // Not sent from a stream here: asked of the rows first, then of the stream.
      acks.add({ notificationId: 's-2', userId: 'u2' }),
    ]);
    expect(results.map((r) => r.outcome)).toEqual(['acked', 'acked', 'acked']);
    expect(written.map(({ record, acks: n }) => [record, n])).toEqual([
      ['rows', 2],
      ['stream', 2],
    ]);
    expect(written.every((w) => w.seconds >= 0)).toBe(true);
    expect(flushed).toHaveLength(1);
    // The batch waited its gathering window (10 ms) before it was written.
    expect(flushed[0]).toBeGreaterThanOrEqual(0.009);
    expect(flushed[0]).toBeGreaterThanOrEqual(written[0]!.seconds + written[1]!.seconds);
  });

  it('observes nothing for a flush that failed', async () => {
    const observed: string[] = [];
    const failing = new AckWriter(
      { ackMany: () => Promise.reject(new Error('down')) } as unknown as DeliveryRepository,
      {} as StreamRepository,
      { ackWritten: () => observed.push('written'), ackFlushed: () => observed.push('flushed') },
    );
    await expect(failing.add({ notificationId: 'r-1', userId: 'u1' })).rejects.toThrow('down');
    expect(observed).toEqual([]);
  });
});
