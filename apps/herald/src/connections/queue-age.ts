/** Ages outside 0..this are taken for clock skew between the proxy and the replica, and ignored. */
export const MAX_BELIEVABLE_QUEUE_MS = 10 * 60_000;

/**
 * How long a request waited between the proxy and this replica, from the `X-Request-Start` header the proxy
 * stamps (`t=<seconds since the epoch>` with a fraction, as Nginx's `$msec` gives; also milliseconds or
 * microseconds as integers, as other proxies write it). Undefined without a readable header, or when the age
 * is not believable (negative, or longer than MAX_BELIEVABLE_QUEUE_MS): clocks out of step.
 */
export function queueAgeMs(header: string | string[] | undefined, nowMs: number): number | undefined {
  if (typeof header !== 'string') return undefined;
  const text = header.startsWith('t=') ? header.slice(2) : header;
  if (!/^\d{1,17}(\.\d{1,6})?$/.test(text)) return undefined;
  const value = Number(text);
  // Seconds (10 digits before any fraction), milliseconds (13) or microseconds (16).
  const startedMs = value >= 1e14 ? value / 1000 : value >= 1e11 ? value : value * 1000;
  const age = nowMs - startedMs;
  return age >= 0 && age <= MAX_BELIEVABLE_QUEUE_MS ? age : undefined;
}

/** How long one window of AgeFloor lasts. */
const FLOOR_WINDOW_MS = 30_000;

/**
 * The youngest queue age seen in the current window and the one before it (30 to 60 s). A real queue
 * drains, and the requests that started it were young, so a floor past the bound means the proxy's clock
 * is behind the replica's, not that everything queued that long.
 */
export class AgeFloor {
  private windowStart = -Infinity;
  private current = Infinity;
  private previous = Infinity;

  observe(age: number, now: number): number {
    if (now - this.windowStart >= FLOOR_WINDOW_MS) {
      this.previous = now - this.windowStart < 2 * FLOOR_WINDOW_MS ? this.current : Infinity;
      this.current = Infinity;
      this.windowStart = now;
    }
    this.current = Math.min(this.current, age);
    return Math.min(this.current, this.previous);
  }
}
