import { Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown } from '@nestjs/common';
import { Job } from 'bullmq';
import { REDELIVERY_QUEUE, RedeliveryJobData } from './queues';
import { CheckOutcome, RedeliveryService } from './redelivery.service';

/** The one processor of the redelivery queue. */
@Processor(REDELIVERY_QUEUE, { concurrency: 32 })
export class RedeliveryProcessor extends WorkerHost implements BeforeApplicationShutdown {
  constructor(private readonly redelivery: RedeliveryService) {
    super();
  }

  async process(job: Job<RedeliveryJobData>): Promise<CheckOutcome> {
    return this.redelivery.check(job.data);
  }

  /** Lets running jobs finish before the database and Redis close. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.worker.close();
  }
}
