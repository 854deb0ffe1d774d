import { Inject, Injectable } from '@nestjs/common';
import { AckWriter } from '../acks/ack-writer';
import { Batcher } from '../common/batcher';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import type { Connection } from '../connections/connection';
import { MetricsService } from '../metrics/metrics.service';
import { OpenForReplay, ReplayRepository } from '../record/replay.repository';
import { backstopAt, redeliveryDelayMs } from '../redelivery/backoff';
import { toReplayedFrame } from './notification-frame';
import type { Admitted } from '../connections/handshake-admission';

/** Replay reads (and records) this many deliveries at a time, and fewer first, so the first frames go out at once. */
const REPLAY_FIRST_BATCH = 100;
const REPLAY_BATCH = 500;
/** The replay claims its next batch only once the socket has sent all but this much. */
const REPLAY_MAX_BUFFERED_BYTES = 1024 * 1024;
const REPLAY_DRAIN_TIMEOUT_MS = 30_000;
/**
 * Over a WebSocket, the replay reads its next batch once at most this many of the ones it sent are unacked
 * (the client's acks arrive on the same socket), so the acks never trail far behind the frames: a catch-up
 * ends when its last frame is acked, not a long queue of acks later. A client that sends no ack for
 * REPLAY_ACK_STALL_MS is not waited for.
 */
const REPLAY_MAX_UNACKED = 1000;
const REPLAY_ACK_STALL_MS = 50;

/**
 * The replay on connect (and after a bus catch-up, BusCatchUp): a user's open deliveries and stream offsets,
 * in seq order, paced by the client, while the connection holds its live frames back.
 */
@Injectable()
export class Replay {
  /** Whether each user has anything to replay: one statement for the connections replaying together. */
  private readonly openChecks = new Batcher<string, OpenForReplay>(
    (userIds) => this.deliveries.openForReplay(userIds),
    {
      windowMs: 0,
      maxBatch: 500,
      maxInFlight: 2,
    },
  );

  constructor(
    private readonly deliveries: ReplayRepository,
    /** Told which replayed notifications are a stream's, so their acks go to the stream first. */
    private readonly acks: AckWriter,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * Sends every open delivery of the connection's user, in seq order, then
   * lets live ones through. A resumed SSE stream (`resumeAfterSeq`) skips the
   * sent ones the client already has and puts those back on the clock. The
   * sends are recorded a batch at a time (`replayBatch`), not per delivery.
   * Answers how many it sent. `setUp` is told once the first batch is sent (the connection's setup is done:
   * the rest goes at the client's pace). `open`: what the user has open, read by the connection's setup in the
   * statement that recorded its arrival, after its `replayReading` (`UserRepository.arrive`); without it,
   * the replay reads it now (a bus catch-up).
   */
  async run(connection: Connection, resumeAfterSeq = 0, setUp?: Admitted, open?: OpenForReplay): Promise<number> {
    let afterSeq = 0;
    let total = 0;
    let readAll = false;
    try {
      if (resumeAfterSeq > 0) {
        await this.deliveries.rearmResumed(
          connection.userId,
          resumeAfterSeq,
          backstopAt(this.config.ackTimeoutMs, this.config),
        );
      }
      // The first batch is small, so the first frames go out at once; the rest come 500 at a time. Each batch
      // is recorded once (replayBatch) and checked by the sweep at the first attempt's delay: no write and no
      // BullMQ job per delivery.
      let batchSize = REPLAY_FIRST_BATCH;
      // The connection is registered by now, and its user's bus subscription in place: what is committed
      // after this read reaches it live. A user with nothing open (most, in a reconnect) reads no batch.
      if (!open) {
        connection.replayReading();
        open = await this.openChecks.add(connection.userId);
      }
      const { rows, streams } = open;
      if (!rows && !streams) {
        readAll = true;
        return 0;
      }
      for (;;) {
        const batch = await this.deliveries.replayBatch(
          connection.userId,
          afterSeq,
          batchSize,
          new Date(Date.now() + redeliveryDelayMs(1, this.config)),
          resumeAfterSeq,
          streams,
        );
        // Paced frame by frame too: a batch of large notifications must not overflow the send buffer of a
        // client that reads at a normal pace (past HERALD_MAX_BUFFERED_BYTES it would be cut off).
        const pace = Math.min(REPLAY_MAX_BUFFERED_BYTES, this.config.maxBufferedBytes / 2);
        const now = Date.now();
        for (const item of batch) {
          if (connection.bufferedAmount > pace) await connection.drained(pace, REPLAY_DRAIN_TIMEOUT_MS);
          if (item.streamed) this.acks.sentFromStream(item.notification.id);
          connection.sendReplayed(toReplayedFrame(item), now);
        }
        this.metrics.sent(batch.map((item) => item.attempt));
        setUp?.done();
        total += batch.length;
        if (batch.length < batchSize) {
          readAll = true;
          break;
        }
        batchSize = REPLAY_BATCH;
        // Do not read faster than the client reads and acks, and not at all once it is gone.
        if (connection.transportKind === 'websocket') {
          await connection.ackedDownTo(REPLAY_MAX_UNACKED, REPLAY_ACK_STALL_MS);
        }
        await connection.drained(pace, REPLAY_DRAIN_TIMEOUT_MS);
        if (!connection.isOpen) break;
        afterSeq = batch[batch.length - 1]!.notification.seq;
      }
    } finally {
      connection.finishReplay(readAll);
    }
    return total;
  }
}
