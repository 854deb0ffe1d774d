import { Inject, Injectable, Logger } from '@nestjs/common';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { RedeliveryRepository } from '../record/redelivery.repository';
import { NotificationRepository } from '../record/notification.repository';
import { retryOnDeadlock } from '../record/sql';
import { StoredNotification } from '../record/notification.types';
import { backstopAt } from './backoff';
import { Bus } from '../routing/bus';
import { toBusNotification } from '../delivery/notification-frame';
import { LiveEvents } from '../delivery/live-events';
import { PresenceRepository } from '../routing/presence.repository';
import { RedeliveryJobData } from './queues';
import { WebhookEvents } from '../webhooks/webhook-events';

export type CheckOutcome = 'stale' | 'parked' | 'failed' | 'resent' | 'postponed';

const SWEEP_BATCH = 500;
/** Checks of one timer slot run this many at a time (each reads, and may write, PostgreSQL). */
const CHECKS_AT_ONCE = 16;
const SWEEP_MAX_BATCHES = 20;
/**
 * Replay records settled per statement (each covers up to 500 deliveries, nearly always acked by then):
 * up to 2 000 per sweep run, so a reconnect storm (every user of a restarted replica replayed at once)
 * is checked within a few runs.
 */
const REPLAY_CHECK_BATCH = 100;
/**
 * The timed side of delivery: what happens when an ack does not come. Checks run on the replica that
 * sent (RedeliveryScheduler's timers) and the sweep in a BullMQ worker on any replica; every decision is
 * re-read from PostgreSQL.
 */
@Injectable()
export class RedeliveryService {
  private readonly logger = new Logger(RedeliveryService.name);

  constructor(
    private readonly deliveries: RedeliveryRepository,
    private readonly notifications: NotificationRepository,
    private readonly presence: PresenceRepository,
    private readonly bus: Bus,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
    private readonly live: LiveEvents,
    private readonly webhooks: WebhookEvents,
  ) {}

  /**
   * The checks of one timer slot, `CHECKS_AT_ONCE` at a time; their outcomes counted. Every check runs even
   * when some throw; then this throws, and the sweep takes the failed ones at their backstop, finding any done
   * since stale (their
   * attempt has moved on, or they are settled).
   */
  async checkAll(jobs: RedeliveryJobData[]): Promise<Partial<Record<CheckOutcome, number>>> {
    const outcomes: Partial<Record<CheckOutcome, number>> = {};
    let failed = 0;
    let firstError: unknown;
    for (let at = 0; at < jobs.length; at += CHECKS_AT_ONCE) {
      const done = await Promise.allSettled(jobs.slice(at, at + CHECKS_AT_ONCE).map((job) => this.check(job)));
      for (const result of done) {
        if (result.status === 'fulfilled') outcomes[result.value] = (outcomes[result.value] ?? 0) + 1;
        else if (failed++ === 0) firstError = result.reason;
      }
    }
    if (failed > 0) {
      const reason = firstError instanceof Error ? firstError.message : String(firstError);
      throw new Error(`${failed} of ${jobs.length} redelivery checks failed (first: ${reason})`);
    }
    return outcomes;
  }

  /**
   * The ack timeout of send number `attempt` has run out. Still unacked and the
   * user online: send again (or end `failed` after the last attempt). Offline:
   * stop the clock; the replay on connect sends it.
   */
  async check(job: RedeliveryJobData): Promise<CheckOutcome> {
    const open = await this.deliveries.findOpen(job.notificationId, job.userId);
    if (!open || open.status !== 'sent' || open.attempts !== job.attempt || open.notification.expiresAt <= new Date()) {
      return 'stale';
    }
    // A replay sent it again since (the user reconnected): that send's check, not this one, decides.
    if (open.replayedSince) return 'stale';
    return this.resendOrSettle(open.notification, job.userId, open.attempts, 'sent', job.requestId);
  }

  /**
   * Expires what is past its TTL, puts what replays sent and was not acked by its check time on the
   * clock, then re-routes open deliveries whose check is overdue: those, and ones whose replica's timer
   * was lost (it stopped or died) or never set (a replica died between commit and publish).
   */
  async sweep(): Promise<Record<Exclude<CheckOutcome, 'stale'> | 'expired' | 'replayUnacked', number>> {
    let expired = 0;
    for (let i = 0; i < SWEEP_MAX_BATCHES; i++) {
      const ids = await this.deliveries.expireDue(SWEEP_BATCH);
      const n = ids.length;
      if (n > 0) this.live.emit({ type: 'deliveries.changed', notificationIds: [...new Set(ids)] });
      expired += n;
      this.metrics.delivery('expired', n);
      if (n < SWEEP_BATCH) break;
    }
    let replayUnacked = 0;
    for (let i = 0; i < SWEEP_MAX_BATCHES; i++) {
      // It locks a user's rows in seq order, an ack batch in key order: a rare deadlock is retried.
      const { checks, notificationIds, handedOff } = await retryOnDeadlock(() =>
        this.deliveries.settleReplayChecks(REPLAY_CHECK_BATCH),
      );
      replayUnacked += notificationIds.length;
      this.metrics.troubleRowsMade('replay_unacked', handedOff);
      if (notificationIds.length > 0) {
        this.live.emit({ type: 'deliveries.changed', notificationIds: [...new Set(notificationIds)] });
      }
      if (checks < REPLAY_CHECK_BATCH) break;
    }
    const counts = { expired, replayUnacked, resent: 0, parked: 0, failed: 0, postponed: 0 };
    const notifications = new Map<string, StoredNotification | null>();
    for (let i = 0; i < SWEEP_MAX_BATCHES; i++) {
      const due = await this.deliveries.findDue(SWEEP_BATCH);
      if (due.length === 0) break;
      // Presence for the whole batch at once, and the offline ones parked in one statement:
      // a broadcast to many offline users costs a few round trips per 500, not per user.
      const online = await this.presence.onlineUsers([...new Set(due.map((d) => d.userId))]);
      counts.parked += await this.deliveries.parkMany(due.filter((d) => !online.has(d.userId)));
      for (const delivery of due) {
        if (!online.has(delivery.userId)) continue;
        let notification = notifications.get(delivery.notificationId);
        if (notification === undefined) {
          notification = await this.notifications.findById(delivery.notificationId);
          notifications.set(delivery.notificationId, notification);
        }
        if (!notification) continue;
        const outcome = await this.resendOrSettle(notification, delivery.userId, delivery.attempts, delivery.status);
        if (outcome !== 'stale') counts[outcome] += 1;
      }
      if (due.length < SWEEP_BATCH) break;
    }
    if (Object.values(counts).some((n) => n > 0)) {
      this.logger.log({ message: 'sweep', ...counts });
    }
    return counts;
  }

  private async resendOrSettle(
    notification: StoredNotification,
    userId: string,
    attempts: number,
    status: 'pending' | 'sent' = 'sent',
    requestId?: string,
  ): Promise<CheckOutcome> {
    if (!(await this.presence.isOnline(userId))) {
      await this.deliveries.park(notification.id, userId, attempts);
      return 'parked';
    }
    if (status === 'sent' && attempts >= this.config.redeliveryMaxAttempts) {
      const failed = await this.deliveries.markFailed(notification.id, userId, attempts);
      if (failed) {
        this.metrics.delivery('failed');
        this.webhooks.record('notification.failed', notification.id, userId);
        this.live.emit({ type: 'deliveries.changed', notificationIds: [notification.id] });
        this.logger.log({ message: 'delivery failed', notificationId: notification.id, userId, attempts, requestId });
      }
      return failed ? 'failed' : 'stale';
    }
    // If the holding replica dies before it records the send, the sweep finds this again.
    await this.deliveries.postpone(
      notification.id,
      userId,
      attempts,
      backstopAt(this.config.ackTimeoutMs, this.config),
    );
    const reached = await this.bus.publishToUsers([userId], {
      kind: 'deliver',
      notification: toBusNotification(notification, requestId),
      attempt: attempts + 1,
    });
    if (reached === 0) {
      // Presence says online but no replica is listening right now (its subscriber is
      // reconnecting, say). Not parked: the postponed next_attempt_at brings it back to the sweep.
      this.logger.debug?.({
        message: 'no replica took the resend; the sweep retries',
        notificationId: notification.id,
        userId,
      });
      return 'postponed';
    }
    this.logger.debug?.({
      message: 'redelivering',
      notificationId: notification.id,
      userId,
      attempt: attempts + 1,
      requestId,
    });
    return 'resent';
  }
}
