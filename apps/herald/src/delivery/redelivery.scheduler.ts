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
 * Checks of sends made within this long go to Redis together. Each check draws its own delay (with its
 * jitter) when it is scheduled; a job carries the checks of one attempt number whose due times fall in
 * the same `CHECK_BUCKET_MS`, and fires at the latest of them. So a check runs at most one bucket late,
 * never early, and sends made together still come back spread over the jitter; the delivery's backstop
 * allows for the gathering (`deliverToLocal`).
 */
export const CHECK_GATHER_MS = 50;
export const CHECK_BUCKET_MS = 250;
/** The most checks one job carries. */
export const CHECKS_PER_JOB_MAX = 500;

/**
 * Puts the "check these deliveries again" jobs on the redelivery queue. One job per send cost a replica
 * about 12% of its CPU under unicast load (BullMQ's job objects, scripts and events,
 * docs/performance.md); a job now carries the checks of the sends of 50 ms that are due together.
 */
@Injectable()
export class RedeliveryScheduler implements OnModuleDestroy {
  private readonly logger = new Logger(RedeliveryScheduler.name);
  private gathered: { data: RedeliveryJobData; dueAt: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly writing = new Set<Promise<void>>();
  /** Set once shutdown begins: from then on, checks go to Redis at once (no timer outlives the queue). */
  private closing = false;

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
    const now = Date.now();
    for (const data of items) this.gathered.push({ data, dueAt: now + redeliveryDelayMs(data.attempt, this.config) });
    if (this.closing) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), CHECK_GATHER_MS);
  }

  /**
   * Shutdown: what is gathered goes to Redis now, and what sends still schedule while connections drain
   * goes at once. The queue closes after the drain (`onApplicationShutdown`); a check that misses it is
   * the sweep's.
   */
  async onModuleDestroy(): Promise<void> {
    this.closing = true;
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
  private async addAll(items: { data: RedeliveryJobData; dueAt: number }[]): Promise<void> {
    const groups = new Map<string, { checks: RedeliveryJobData[]; dueAt: number }>();
    for (const { data, dueAt } of items) {
      const key = `${data.attempt}:${Math.floor(dueAt / CHECK_BUCKET_MS)}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { checks: [], dueAt }));
      group.checks.push(data);
      group.dueAt = Math.max(group.dueAt, dueAt);
    }
    const now = Date.now();
    const jobs: { name: string; data: RedeliveryQueueData; opts: object }[] = [];
    for (const { checks, dueAt } of groups.values()) {
      for (let at = 0; at < checks.length; at += CHECKS_PER_JOB_MAX) {
        jobs.push({
          name: REDELIVERY_JOB,
          data: { checks: checks.slice(at, at + CHECKS_PER_JOB_MAX) },
          opts: {
            delay: Math.max(0, dueAt - now),
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
