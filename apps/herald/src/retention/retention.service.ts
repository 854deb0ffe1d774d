import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { AdminRepository } from '../record/admin.repository';
import { RetentionRepository } from '../record/retention.repository';
import { PresenceRepository } from '../routing/presence.repository';
import { partitionWidthMs, retentionIntervalMs, windowsToMake } from './partition-plan';

/** Rows deleted per statement, and statements per run, for what retention removes row by row. */
const BATCH = 5_000;
const BATCHES_PER_RUN = 4;

/**
 * Keeps PostgreSQL the size of its retention (ADR 0020), on every replica (changes to the partitions take
 * turns under an advisory lock). Each run: makes the partitions of the coming windows; records which closed
 * partitions are final; drops those final for HERALD_RETENTION_HOURS and past the inbox's window
 * (HERALD_INBOX_RETENTION_DAYS from publish); works through the history in bounded
 * batches; deletes idempotency keys past their window, and users long gone when HERALD_USER_RETENTION_DAYS
 * is on. The first run completes before the replica serves.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(RetentionService.name);
  private readonly widthMs: number;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private oldestAt: Date | null = null;
  private historyLeft = 0;

  constructor(
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly repository: RetentionRepository,
    private readonly metrics: MetricsService,
    private readonly presence: PresenceRepository,
    private readonly admin: AdminRepository,
  ) {
    this.widthMs = partitionWidthMs(config.retentionMs);
    this.intervalMs = retentionIntervalMs(this.widthMs);
    metrics.gauge(
      'herald_retention_oldest_notification_seconds',
      'Age of the oldest notification PostgreSQL still holds (0 when none), as of the last retention run.',
      [],
      (gauge) => gauge.set(this.oldestAt ? Math.max(0, (Date.now() - this.oldestAt.getTime()) / 1000) : 0),
    );
    metrics.gauge(
      'herald_retention_history_notifications',
      'Notifications from before partitioning still in the history (PostgreSQL estimate); retention empties it in batches.',
      [],
      (gauge) => gauge.set(this.historyLeft),
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.run();
    this.schedule();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One run; a failure is logged and the next run tries again. */
  run(): Promise<void> {
    this.running ??= this.runOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run().then(() => this.schedule()), this.intervalMs);
  }

  private async runOnce(): Promise<void> {
    const started = process.hrtime.bigint();
    try {
      await this.makeAhead();
      await this.dropFinal();
      await this.purge('history', () =>
        this.repository.purgeHistory(this.config.retentionMs, this.config.inboxRetentionMs, BATCH),
      );
      await this.purge('idempotency_keys', () =>
        this.repository.purgeIdempotencyKeys(this.config.idempotencyMs, BATCH),
      );
      if (this.config.userRetentionMs > 0)
        await this.purge('users', () =>
          // Not while the inbox may still list what they were sent (their cursors say which).
          this.repository.purgeUsers(
            Math.max(this.config.userRetentionMs, this.config.inboxRetentionMs),
            BATCH,
            (ids) => this.presence.onlineUsers(ids),
          ),
        );
      this.oldestAt = await this.admin.oldestNotification();
      this.historyLeft = await this.repository.historySize();
    } catch (error) {
      this.logger.warn({ message: 'retention run failed; the next run tries again', error: (error as Error).message });
    } finally {
      this.metrics.retentionRunSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private async makeAhead(): Promise<void> {
    const partitions = await this.repository.partitions();
    const lastEnd = partitions.length > 0 ? partitions[partitions.length - 1]!.endsAt.getTime() : null;
    for (const window of windowsToMake(Date.now(), this.widthMs, lastEnd)) {
      if (!(await this.repository.makePartition(window.suffix, window.startsAt, window.endsAt))) return;
    }
  }

  private async dropFinal(): Promise<void> {
    const now = Date.now();
    for (const partition of await this.repository.partitions()) {
      if (partition.endsAt.getTime() > now) break;
      let finalAt = partition.finalAt?.getTime();
      if (finalAt === undefined && (await this.repository.markFinal(partition.suffix))) finalAt = Date.now();
      if (finalAt === undefined || finalAt + this.config.retentionMs > Date.now()) continue;
      // Its notifications are listed in inboxes until the inbox window has passed all of them (ADR 0026).
      if (partition.endsAt.getTime() + this.config.inboxRetentionMs > Date.now()) continue;
      const notifications = await this.repository.dropPartition(partition.suffix);
      if (notifications === null) return;
      this.metrics.partitionsDropped.inc();
      this.logger.log({
        message: 'retention dropped a partition',
        partition: partition.suffix,
        from: partition.startsAt.toISOString(),
        to: partition.endsAt.toISOString(),
        notifications,
      });
    }
  }

  /** Up to BATCHES_PER_RUN batches of `batch`, stopping at a short one; logged when it removed any. */
  private async purge(what: 'history' | 'idempotency_keys' | 'users', batch: () => Promise<number>): Promise<void> {
    let removed = 0;
    for (let i = 0; i < BATCHES_PER_RUN; i++) {
      const n = await batch();
      removed += n;
      if (n < BATCH) break;
    }
    if (removed === 0) return;
    this.metrics.retentionRemoved.inc({ what }, removed);
    this.logger.log({ message: 'retention removed rows', what, removed });
  }
}
