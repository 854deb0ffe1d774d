import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { withTimeout } from '../common/timeout';
import { MetricsService } from '../metrics/metrics.service';
import { SWEEP_QUEUE } from './queues';

const STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
const SCRAPE_TIMEOUT_MS = 2000;

/**
 * BullMQ queue depth (the sweep's), read from Redis when Prometheus scrapes. The queue is
 * shared, so every replica reports the same numbers: take the max, not the sum.
 */
@Injectable()
export class QueueMetrics {
  constructor(metrics: MetricsService, @InjectQueue(SWEEP_QUEUE) sweep: Queue) {
    metrics.gauge(
      'herald_queue_jobs',
      'Jobs in each BullMQ queue by state (the same on every replica; -1 when Redis did not answer).',
      ['queue', 'state'],
      async (gauge) => {
        await Promise.all(
          [sweep].map(async (queue) => {
            try {
              const counts = await withTimeout(queue.getJobCounts(...STATES), SCRAPE_TIMEOUT_MS, 'queue counts');
              for (const state of STATES) gauge.set({ queue: queue.name, state }, counts[state] ?? 0);
            } catch {
              for (const state of STATES) gauge.set({ queue: queue.name, state }, -1);
            }
          }),
        );
      },
    );
  }
}
