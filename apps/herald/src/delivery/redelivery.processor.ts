import { Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Inject } from '@nestjs/common';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { Job } from 'bullmq';
import { REDELIVERY_QUEUE, RedeliveryQueueData } from './queues';
import { closeWorker } from './worker-shutdown';
import { CheckOutcome, RedeliveryService } from './redelivery.service';

/**
 * The one processor of the redelivery queue. A job carries up to 500 checks, run 16 at a time: 4 jobs at
 * once keep at most 64 checks in flight against the PostgreSQL pool (20 connections), which publishes
 * and acks share.
 */
@Processor(REDELIVERY_QUEUE, { concurrency: 4 })
export class RedeliveryProcessor extends WorkerHost implements BeforeApplicationShutdown {
  constructor(
    private readonly redelivery: RedeliveryService,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
  ) {
    super();
  }

  async process(job: Job<RedeliveryQueueData>): Promise<Partial<Record<CheckOutcome, number>>> {
    const checks = 'checks' in job.data ? job.data.checks : [job.data];
    return this.metrics.countJob(REDELIVERY_QUEUE, this.redelivery.checkAll(checks));
  }

  /** Lets running jobs finish (within the grace) before the database and Redis close. */
  async beforeApplicationShutdown(): Promise<void> {
    await closeWorker(this.worker, this.config.shutdownGraceMs);
  }
}
