/** Queue and job names, and typed job data, of the webhook queues (ADR 0027). */

/** The batcher: one job a second (a job scheduler), which one replica takes. */
export const WEBHOOK_BATCH_QUEUE = 'webhook-batches';
export const WEBHOOK_BATCH_JOB = 'batch';
export const WEBHOOK_BATCH_SCHEDULER_ID = 'webhook-batch-every-second';
export type WebhookBatchJobData = Record<string, never>;

/** One try of one message; its job id is `<messageId>.<attempt>`, so a try is queued once. */
export const WEBHOOK_DELIVERY_QUEUE = 'webhook-deliveries';
export const WEBHOOK_DELIVERY_JOB = 'deliver';
export interface WebhookDeliveryJobData {
  messageId: string;
  attempt: number;
}

/**
 * Try `attempt` of a message, after `delayMs`: queued once however often it is added (its job id), unless
 * `reason` makes the id another (an endpoint enabled again tries at once what waits for a delayed job).
 */
export function deliveryJob(messageId: string, attempt: number, delayMs = 0, reason?: string) {
  return {
    name: WEBHOOK_DELIVERY_JOB,
    data: { messageId, attempt } satisfies WebhookDeliveryJobData,
    opts: {
      jobId: reason === undefined ? `${messageId}.${attempt}` : `${messageId}.${attempt}.${reason}`,
      delay: delayMs,
      removeOnComplete: true,
      // A try that threw (a store away) is gone at once: the housekeeping queues it again under this same id,
      // which BullMQ would ignore while a failed job kept it.
      removeOnFail: true,
    },
  };
}
