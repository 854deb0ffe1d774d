/** Queue and job names, and typed job data, of every BullMQ queue. */
export const REDELIVERY_QUEUE = 'redelivery';
export const REDELIVERY_JOB = 'redeliver';
export const SWEEP_QUEUE = 'sweep';
export const SWEEP_JOB = 'sweep';
export const SWEEP_SCHEDULER_ID = 'sweep-every-interval';

/** Check delivery (notificationId, userId) after send number `attempt`. */
export interface RedeliveryJobData {
  notificationId: string;
  userId: string;
  attempt: number;
  /** X-Request-Id of the publish, when the send came from it (not for replays). */
  requestId?: string;
}

/** A redelivery job: the checks of sends of one attempt number made together (one check: older jobs). */
export type RedeliveryQueueData = { checks: RedeliveryJobData[] } | RedeliveryJobData;

/** The sweep carries no data; its scheduler sets the interval. */
export type SweepJobData = Record<string, never>;
