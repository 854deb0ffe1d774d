import type { Worker } from 'bullmq';

/** How long a forced close may take before the worker's connections are dropped instead. */
const FORCED_CLOSE_MS = 1000;

/** Resolves true when `work` settles within `ms`, false otherwise; the timer is always released. */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes a BullMQ worker, letting running jobs finish for at most `graceMs`;
 * then closes it by force (the jobs' deliveries stay open in PostgreSQL and
 * the sweep picks them up). A forced close can hang too, on a Redis that has
 * just come back (its blocking connection still reconnecting): after
 * FORCED_CLOSE_MS its connections are dropped, so shutdown always ends.
 */
export async function closeWorker(worker: Worker, graceMs: number): Promise<void> {
  if (await within(worker.close(), graceMs)) return;
  if (await within(worker.close(true), FORCED_CLOSE_MS)) return;
  await within(worker.disconnect(), FORCED_CLOSE_MS);
}
