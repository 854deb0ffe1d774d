import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { withTimeout } from '../common/timeout';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { redeliveryDelayMs } from './backoff';
import { REDELIVERY_JOB, REDELIVERY_QUEUE, RedeliveryJobData, RedeliveryQueueData } from './queues';

const SCHEDULE_TIMEOUT_MS = 2000;
/**
 * Checks of sends made within this long go to Redis together, one job per attempt number. A check fires
 * its delay after the gathering ends, so at most this much later than one scheduled alone, and always
 * before the delivery's backstop (two sweep intervals of at least 100 ms later).
 */
export const CHECK_GATHER_MS = 50;
/** The most checks one job carries. */
export const CHECKS_PER_JOB_MAX = 500;

/**
 * Puts the "check these deliveries again" jobs on the redelivery queue. One job per send cost a replica
 * more CPU than the send itself under unicast load (BullMQ's job objects, scripts and events,
 * docs/performance.md); a job now carries the checks of every send of the same attempt number made in
 * the same 50 ms.
 */
@Injectable()
export class RedeliveryScheduler implements OnModuleDestroy {
  private readonly logger = new Logger(RedeliveryScheduler.name);
  private gathered: RedeliveryJobData[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly writing = new Set<Promise<void>>();

  constructor(
    @InjectQueue(REDELIVERY_QUEUE) private readonly queue: Queue<RedeliveryQueueData>,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
  ) {}

  /**
   * Schedules one check per delivery just sent, without waiting for Redis. A failure loses nothing:
   * the delivery's `next_attempt_at` in PostgreSQL lets the sweep find it.
   */
  schedule(items: RedeliveryJobData[]): void {
    if (items.length === 0) return;
    for (const item of items) this.gathered.push(item);
    this.timer ??= setTimeout(() => this.flush(), CHECK_GATHER_MS);
  }

  /** What is gathered goes to Redis before the queue closes (what cannot, the sweep covers). */
  async onModuleDestroy(): Promise<void> {
    this.flush();
    await Promise.all(this.writing);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const items = this.gathered;
    this.gathered = [];
    if (items.length === 0) return;
    const write = this.addAll(items);
    this.writing.add(write);
    void write.finally(() => this.writing.delete(write));
  }

  /** Never throws: a check not scheduled is the sweep's. */
  private async addAll(items: RedeliveryJobData[]): Promise<void> {
    const byAttempt = new Map<number, RedeliveryJobData[]>();
    for (const item of items) {
      let list = byAttempt.get(item.attempt);
      if (!list) byAttempt.set(item.attempt, (list = []));
      list.push(item);
    }
    const jobs: { name: string; data: RedeliveryQueueData; opts: object }[] = [];
    for (const [attempt, list] of byAttempt) {
      for (let at = 0; at < list.length; at += CHECKS_PER_JOB_MAX) {
        jobs.push({
          name: REDELIVERY_JOB,
          data: { checks: list.slice(at, at + CHECKS_PER_JOB_MAX) },
          opts: {
            delay: redeliveryDelayMs(attempt, this.config),
            attempts: 5,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: true,
            removeOnFail: { count: 1000 },
          },
        });
      }
    }
    try {
      // Bounded: BullMQ's connection queues commands while Redis is away; the sweep backstop covers a
      // check not scheduled.
      await withTimeout(this.queue.addBulk(jobs), SCHEDULE_TIMEOUT_MS, 'BullMQ addBulk');
    } catch (error) {
      this.logger.warn({
        message: 'could not schedule redelivery checks; the sweep will catch them',
        count: items.length,
        error: (error as Error).message,
      });
    }
  }
}
