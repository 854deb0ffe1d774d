import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Inject, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
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
 */
@Processor(SWEEP_QUEUE, { concurrency: 1 })
export class SweepProcessor extends WorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(SweepProcessor.name);
  private refresh: NodeJS.Timeout | undefined;

  constructor(
    private readonly redelivery: RedeliveryService,
    @InjectQueue(SWEEP_QUEUE) private readonly queue: Queue<SweepJobData>,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
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
    await closeWorker(this.worker, this.config.shutdownGraceMs);
  }
}
