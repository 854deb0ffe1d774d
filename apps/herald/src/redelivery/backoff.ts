/** Redelivery timing: pure functions, so tests can pin the random source. */
export interface BackoffPolicy {
  ackTimeoutMs: number;
  redeliveryBackoffMs: number;
  redeliveryMaxBackoffMs: number;
}

/**
 * How long after send number `attempt` (1-based) the delivery is checked and,
 * if still unacked, sent again: the ack timeout plus an exponential backoff
 * `base · 2^(attempt-1)`, capped, with "equal jitter" (half fixed, half random)
 * so that many deliveries sent together do not come back together.
 */
export function redeliveryDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const backoff = Math.min(policy.redeliveryMaxBackoffMs, policy.redeliveryBackoffMs * 2 ** exponent);
  const jittered = backoff / 2 + random() * (backoff / 2);
  return Math.round(policy.ackTimeoutMs + jittered);
}

/**
 * When the sweep should treat a delivery's check as lost: `delayMs` (the
 * latest the check can fire) plus two sweep intervals. Stored as
 * `next_attempt_at`; one rule for every place that times a delivery.
 */
export function backstopAt(delayMs: number, policy: { sweepIntervalMs: number }): Date {
  return new Date(Date.now() + delayMs + 2 * policy.sweepIntervalMs);
}
