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
