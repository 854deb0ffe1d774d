/** Reconnect timing: exponential backoff with jitter, so a restart does not bring every client back at once. */
export interface BackoffOptions {
  /** Delay before the first reconnect, before jitter (default 1000 ms). */
  initialMs?: number;
  /** Largest delay (default 30 000 ms). */
  maxMs?: number;
  /** A connection open at least this long resets the backoff (default 10 000 ms). */
  stableAfterMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 1000, maxMs: 30_000, stableAfterMs: 10_000 };

/**
 * Delay before reconnect number `attempt` (1-based): `initial · 2^(attempt-1)`,
 * capped at `max`, then "equal jitter" — a uniformly random point in the
 * upper half — so clients spread out but none comes back at once.
 */
export function reconnectDelayMs(
  attempt: number,
  options: Required<BackoffOptions> = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * The delay a 1013 close asks for when a replica sheds a reconnect storm (reason `retry after 2400 ms`, the
 * protocol's `retryAfterReason`; on the SSE stream, a 503 whose message ends so), or null when it asks for none.
 * The client then comes back after that delay, capped at its largest backoff, instead of its own.
 */
export function shedDelayMs(reason: string, options: Required<BackoffOptions> = DEFAULT_BACKOFF): number | null {
  const match = /retry after (\d{1,7}) ms$/.exec(reason);
  return match ? Math.min(Number(match[1]), options.maxMs) : null;
}
