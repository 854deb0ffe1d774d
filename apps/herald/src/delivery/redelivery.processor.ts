import { Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Inject } from '@nestjs/common';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { Job } from 'bullmq';
import { REDELIVERY_QUEUE, RedeliveryJobData } from './queues';
import { closeWorker } from './worker-shutdown';
import { CheckOutcome, RedeliveryService } from './redelivery.service';

/** The one processor of the redelivery queue. */
@Processor(REDELIVERY_QUEUE, { concurrency: 32 })
export class RedeliveryProcessor extends WorkerHost implements BeforeApplicationShutdown {
  constructor(
    private readonly redelivery: RedeliveryService,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
  ) {
    super();
  }

  async process(job: Job<RedeliveryJobData>): Promise<CheckOutcome> {
    return this.redelivery.check(job.data);
  }

  /** Lets running jobs finish (within the grace) before the database and Redis close. */
  async beforeApplicationShutdown(): Promise<void> {
    await closeWorker(this.worker, this.config.shutdownGraceMs);
  }
}
