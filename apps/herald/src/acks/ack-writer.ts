import { performance } from 'node:perf_hooks';
import { Batcher } from '../common/batcher';
import type { AckRecord, MetricsService } from '../metrics/metrics.service';
import { DeliveryRepository } from '../record/delivery.repository';
import type { AckResult } from '../record/notification.types';
import { retryOnDeadlock } from '../record/sql';
import { StreamAck, StreamRepository } from '../record/stream.repository';

/**
 * Acks of every connection here are written a batch at a time (group commit): a replay of thousands acked
 * at full speed, or a broadcast acked by thousands, costs a few statements instead of one each. The first
 * ack of a batch always waits this long for others (nothing waits on an ack's answer but the client's
 * bookkeeping, and its commit is asynchronous); each is answered once its batch has committed.
 */
const ACK_WINDOW_MS = 10;
const ACK_BATCH_MAX = 500;
/** Two ack batches may be written at once: one is written while the next gathers behind it. */
const ACK_BATCHES_IN_FLIGHT = 2;
/** Stream notifications this replica remembers having sent, to write their acks on the stream at once. */
const KNOWN_STREAM_IDS = 50_000;

type Ack = { notificationId: string; userId: string };
/** An ack with the time it arrived (`performance.now()`), for the flush latency. */
type ArrivedAck = Ack & { at: number };

function fromStream(ack: StreamAck): AckResult {
  switch (ack.outcome) {
    case 'acked':
      return {
        outcome: 'acked',
        changed: true,
        ...(ack.sincePublishMs !== undefined ? { sincePublishMs: ack.sincePublishMs } : {}),
      };
    case 'duplicate':
    case 'expired':
      return { outcome: ack.outcome, changed: false };
    case 'row':
    case 'unknown':
      return { outcome: 'unknown', changed: false };
  }
}

/**
 * Writes acks in batches, each where its delivery is recorded (ADR 0007): a deliveries row (a user-list
 * publish, or a broadcast's delivery handed off for trouble), or the user's cursor of a broadcast's stream.
 * A notification this replica sent from a stream goes to the stream first; any other to the rows first. What
 * one side does not know goes to the other, so a replica that never saw a notification still writes its ack.
 */
export class AckWriter {
  private readonly batcher: Batcher<ArrivedAck, AckResult>;
  /** Insertion-ordered, so the oldest is forgotten first. */
  private readonly streamIds = new Set<string>();

  constructor(
    private readonly deliveries: DeliveryRepository,
    private readonly streams: StreamRepository,
    private readonly metrics: Pick<MetricsService, 'ackWritten' | 'ackFlushed'>,
  ) {
    this.batcher = new Batcher((items) => this.write(items), {
      windowMs: ACK_WINDOW_MS,
      alwaysWait: true,
      maxBatch: ACK_BATCH_MAX,
      maxInFlight: ACK_BATCHES_IN_FLIGHT,
    });
  }

  add(ack: Ack): Promise<AckResult> {
    return this.batcher.add({ notificationId: ack.notificationId, userId: ack.userId, at: performance.now() });
  }

  /** A notification of a stream that this replica sent: its acks go to the stream first. */
  sentFromStream(notificationId: string): void {
    if (this.streamIds.has(notificationId)) return;
    this.streamIds.add(notificationId);
    if (this.streamIds.size > KNOWN_STREAM_IDS) {
      this.streamIds.delete(this.streamIds.values().next().value as string);
    }
  }

  /** Writes one batch and observes it: once per statement (size, time) and once per flush (oldest ack's wait). */
  private async write(items: ArrivedAck[]): Promise<AckResult[]> {
    const results = await this.writeAll(items);
    // The batcher keeps arrival order: the first item is the oldest.
    this.metrics.ackFlushed((performance.now() - items[0]!.at) / 1000);
    return results;
  }

  private async writeAll(items: Ack[]): Promise<AckResult[]> {
    const results: AckResult[] = new Array<AckResult>(items.length);
    const streamFirst: number[] = [];
    const rowsFirst: number[] = [];
    items.forEach((item, i) => (this.streamIds.has(item.notificationId) ? streamFirst : rowsFirst).push(i));

    const toStream = [...streamFirst];
    if (rowsFirst.length > 0) {
      const answered = await this.toRows(rowsFirst.map((i) => items[i]!));
      answered.forEach((result, k) => {
        if (result.outcome === 'unknown') toStream.push(rowsFirst[k]!);
        else results[rowsFirst[k]!] = result;
      });
    }
    const askedRows = new Set(rowsFirst);
    const toRows: number[] = [];
    if (toStream.length > 0) {
      const answered = await this.timed('stream', toStream.length, () =>
        retryOnDeadlock(() => this.streams.ackMany(toStream.map((i) => items[i]!))),
      );
      answered.forEach((ack, k) => {
        const i = toStream[k]!;
        // Handed off to a row, or unknown to the stream though not yet asked of the rows.
        if (ack.outcome === 'row' || (ack.outcome === 'unknown' && !askedRows.has(i))) toRows.push(i);
        else results[i] = fromStream(ack);
      });
    }
    if (toRows.length > 0) {
      const answered = await this.toRows(toRows.map((i) => items[i]!));
      answered.forEach((result, k) => (results[toRows[k]!] = result));
    }
    return results;
  }

  private toRows(items: Ack[]): Promise<AckResult[]> {
    return this.timed('rows', items.length, () => retryOnDeadlock(() => this.deliveries.ackMany(items)));
  }

  private async timed<T>(record: AckRecord, acks: number, statement: () => Promise<T>): Promise<T> {
    const start = performance.now();
    const result = await statement();
    this.metrics.ackWritten(record, acks, (performance.now() - start) / 1000);
    return result;
  }
}
