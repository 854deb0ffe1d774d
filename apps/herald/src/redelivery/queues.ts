/** Queue and job names, and typed job data, of the BullMQ queue (the sweep), and a redelivery check. */
export const SWEEP_QUEUE = 'sweep';
export const SWEEP_JOB = 'sweep';
export const SWEEP_SCHEDULER_ID = 'sweep-every-interval';
/** The previous version's queue of redelivery checks (ADR 0009 retired it): an upgrade deletes its keys. */
export const RETIRED_REDELIVERY_QUEUE = 'redelivery';

/** Check delivery (notificationId, userId) after send number `attempt` (RedeliveryScheduler's timers). */
export interface RedeliveryJobData {
  notificationId: string;
  userId: string;
  attempt: number;
  /** X-Request-Id of the publish, when the send came from it (not for replays). */
  requestId?: string;
}

/** The sweep carries no data; its scheduler sets the interval. */
export type SweepJobData = Record<string, never>;
