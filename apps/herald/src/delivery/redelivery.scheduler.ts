import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import { Batcher } from '../common/batcher';
import { withTimeout } from '../common/timeout';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { redeliveryDelayMs } from './backoff';
import { REDELIVERY_JOB, REDELIVERY_QUEUE, RedeliveryJobData } from './queues';

const SCHEDULE_TIMEOUT_MS = 2000;
/** Checks scheduled in the same tick (by many sends) go to Redis in one addBulk. */
const SCHEDULE_BATCH_MAX = 1000;
const SCHEDULE_BATCHES_IN_FLIGHT = 2;

/** Puts the "check this delivery again" jobs on the redelivery queue. */
@Injectable()
export class RedeliveryScheduler {
  private readonly logger = new Logger(RedeliveryScheduler.name);
  private readonly batch = new Batcher<RedeliveryJobData, void>(
    async (items) => {
      await this.addAll(items);
      return items.map(() => undefined);
    },
    { windowMs: 0, maxBatch: SCHEDULE_BATCH_MAX, maxInFlight: SCHEDULE_BATCHES_IN_FLIGHT },
  );

  constructor(
    @InjectQueue(REDELIVERY_QUEUE) private readonly queue: Queue<RedeliveryJobData>,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
  ) {}

  /**
   * Schedules one check per delivery just sent. A failure here loses nothing:
   * the delivery's `next_attempt_at` in PostgreSQL lets the sweep find it.
   */
  async schedule(items: RedeliveryJobData[]): Promise<void> {
    if (items.length === 0) return;
    await Promise.all(items.map((item) => this.batch.add(item)));
  }

  /** Never throws: a check not scheduled is the sweep's. */
  private async addAll(items: RedeliveryJobData[]): Promise<void> {
    try {
      // Bounded: BullMQ's connection queues commands while Redis is away, and a live send
      // or a replay must not wait for it; the sweep backstop covers a check not scheduled.
      await withTimeout(
        this.queue.addBulk(
          items.map((data) => ({
            name: REDELIVERY_JOB,
            data,
            opts: {
              jobId: jobId(data),
              delay: redeliveryDelayMs(data.attempt, this.config),
              attempts: 5,
              backoff: { type: 'exponential', delay: 1000 },
              removeOnComplete: true,
              removeOnFail: { count: 1000 },
            },
          })),
        ),
        SCHEDULE_TIMEOUT_MS,
        'BullMQ addBulk',
      );
    } catch (error) {
      this.logger.warn({
        message: 'could not schedule redelivery checks; the sweep will catch them',
        count: items.length,
        error: (error as Error).message,
      });
    }
  }
}

/** Stable per (delivery, attempt): scheduling the same check twice makes one job. */
function jobId(data: RedeliveryJobData): string {
  const user = createHash('sha1').update(data.userId).digest('hex').slice(0, 16);
  return `rd-${data.notificationId}-${user}-${data.attempt}`;
}
