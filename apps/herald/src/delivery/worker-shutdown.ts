import type { MetricsService } from '../metrics/metrics.service';
import type { Worker } from 'bullmq';

/**
 * Closes a BullMQ worker, letting running jobs finish for at most `graceMs`;
 * then closes it by force (the jobs' deliveries stay open in PostgreSQL and
 * the sweep picks them up).
 */
export async function closeWorker(worker: Worker, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    worker.close().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (!closed) await worker.close(true);
}

/** Counts a job's outcome for herald_jobs_total, passing its result or error through. */
export async function countJob<T>(metrics: MetricsService, queue: string, work: Promise<T>): Promise<T> {
  try {
    const result = await work;
    metrics.jobs.inc({ queue, outcome: 'completed' });
    return result;
  } catch (error) {
    metrics.jobs.inc({ queue, outcome: 'failed' });
    throw error;
  }
}
