import { InjectQueue } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Job, Queue, Worker } from 'bullmq';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { SWEEP_JOB, SWEEP_QUEUE, SWEEP_SCHEDULER_ID, SweepJobData } from './queues';
import { RedeliveryService } from './redelivery.service';
import { closeWorker } from './worker-shutdown';

/**
 * The one processor of the sweep queue. A BullMQ job scheduler makes one job
 * every HERALD_SWEEP_INTERVAL_MS, which one replica takes. A sweep that runs
 * longer than the interval can overlap the next one on another replica; that
 * is harmless, every change it makes is conditional on the state it read.
 *
 * The worker is made and closed here, not by `@Processor`: @nestjs/bullmq closes the workers it made at
 * shutdown without a bound, and a worker whose Redis has just come back can hang in `close()` for ever
 * (its blocking connection reconnecting), which kept the process from exiting. `closeWorker` bounds it.
 */
/** While Redis is away, the sweep queue's errors are logged at most this often. */
const ERROR_LOG_EVERY_MS = 10_000;

@Injectable()
export class SweepProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(SweepProcessor.name);
  private refresh: NodeJS.Timeout | undefined;
  private worker: Worker<SweepJobData> | undefined;

  constructor(
    private readonly redelivery: RedeliveryService,
    @InjectQueue(SWEEP_QUEUE) private readonly queue: Queue<SweepJobData>,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.worker = new Worker<SweepJobData>(SWEEP_QUEUE, (job) => this.process(job), {
      connection: this.queue.opts.connection,
      prefix: this.queue.opts.prefix,
      concurrency: 1,
    });
    // Unheard, BullMQ prints each error to stderr (every retry of an outage): logged here, once a while.
    this.worker.on('error', (error) => this.redisError(error));
    this.queue.on('error', (error) => this.redisError(error));
    await this.ensureScheduled();
    // Upserting is idempotent; doing it now and then brings the schedule back
    // after Redis lost its data, without waiting for a replica to restart.
    const every = Math.min(30_000, 10 * this.config.sweepIntervalMs);
    this.refresh = setInterval(() => {
      this.ensureScheduled().catch((error: unknown) =>
        this.logger.warn({ message: 'could not refresh the sweep schedule', error: (error as Error).message }),
      );
    }, every);
  }

  private lastErrorLogged = 0;

  private redisError(error: Error): void {
    if (Date.now() - this.lastErrorLogged < ERROR_LOG_EVERY_MS) return;
    this.lastErrorLogged = Date.now();
    this.logger.warn({ message: 'sweep queue cannot reach Redis; BullMQ retries', error: error.message });
  }

  private async ensureScheduled(): Promise<void> {
    await this.queue.upsertJobScheduler(
      SWEEP_SCHEDULER_ID,
      { every: this.config.sweepIntervalMs },
      { name: SWEEP_JOB, data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 100 } } },
    );
  }

  async process(_job: Job<SweepJobData>): Promise<Awaited<ReturnType<RedeliveryService['sweep']>>> {
    return this.metrics.countJob(
      SWEEP_QUEUE,
      this.metrics.timed(this.metrics.sweepSeconds, () => this.redelivery.sweep()),
    );
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.refresh);
    if (this.worker) await closeWorker(this.worker, this.config.shutdownGraceMs);
  }
}
