import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { MetricsService } from '../metrics/metrics.service';
import { StreamRepository } from '../record/stream.repository';
import { RedeliveryJobData } from './queues';
import { RedeliveryService } from './redelivery.service';
import { RedeliveryTimers } from './redelivery-timers';

export { CHECK_SLOT_MS } from './redelivery-timers';

/** This replica's redelivery timers (RedeliveryTimers, ADR 0009), wired to PostgreSQL, the metrics and the log. */
@Injectable()
export class RedeliveryScheduler implements OnModuleDestroy {
  private readonly logger = new Logger(RedeliveryScheduler.name);
  private readonly timers: RedeliveryTimers;

  constructor(redelivery: RedeliveryService, streams: StreamRepository, metrics: MetricsService) {
    this.timers = new RedeliveryTimers({
      checkAll: (checks) => redelivery.checkAll(checks),
      handOff: (notificationId, userIds, sentAt) => streams.handOff(notificationId, userIds, sentAt),
      counted: (outcomes) => {
        metrics.redeliveryChecks(outcomes);
        if (outcomes.handedOff) metrics.troubleRowsMade('broadcast_unacked', outcomes.handedOff);
      },
      warn: (entry) => this.logger.warn(entry),
    });
    metrics.gauge(
      'herald_redelivery_checks_waiting',
      "Checks waiting in this replica's redelivery timers: sends recorded on rows, and broadcasts sent from streams.",
      ['kind'],
      (gauge) => {
        const { rows, streams: sends } = this.timers.waiting;
        gauge.set({ kind: 'row' }, rows);
        gauge.set({ kind: 'stream' }, sends);
      },
    );
  }

  /** Checks, each after its own delay, the sends just recorded on rows (`delayMs` draws each delay). */
  schedule(items: RedeliveryJobData[], delayMs: (attempt: number) => number): void {
    this.timers.schedule(items, delayMs);
  }

  /** Checks, at `dueAt`, a broadcast's send to `userIds` from its stream. */
  scheduleStream(notificationId: string, userIds: string[], sentAt: Date, dueAt: number): void {
    this.timers.scheduleStream(notificationId, userIds, sentAt, dueAt);
  }

  /** An ack of the notification by the user was written (or found it closed). */
  acked(notificationId: string, userId: string): void {
    this.timers.acked(notificationId, userId);
  }

  async onModuleDestroy(): Promise<void> {
    await this.timers.close();
  }
}
