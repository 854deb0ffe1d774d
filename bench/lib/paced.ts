import { sleep } from './log';

/**
 * Sends at a fixed rate with a bounded window: the k-th send is made k / rate seconds after the start, and
 * at most `maxInFlight` are unanswered (a full window waits for one slot to free: a Promise.race over
 * hundreds of promises per send cost the publisher most of a core once a server fell behind, taking it from
 * the server). `inFlight`, `errors` and `lastError` can be read while it runs, for progress lines.
 */
export class PacedSender {
  inFlight = 0;
  errors = 0;
  lastError = '';

  constructor(private readonly maxInFlight: number) {}

  /**
   * Makes `count` sends at `rate`/s and resolves once all have settled. `achievedRate` is the rate the sends
   * were made at (it falls below `rate` when the window was full), not counting the wait for the last answers.
   */
  async run(count: number, rate: number, send: (k: number) => Promise<unknown>): Promise<{ achievedRate: number }> {
    const started = Date.now();
    let slotFreed: (() => void) | null = null;
    let drained: (() => void) | null = null;
    for (let k = 0; k < count; k++) {
      const wait = started + (k * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
      this.inFlight++;
      void send(k)
        .catch((error: unknown) => {
          this.errors++;
          this.lastError = error instanceof Error ? error.message : String(error);
        })
        .finally(() => {
          this.inFlight--;
          slotFreed?.();
          if (this.inFlight === 0) drained?.();
        });
      if (this.inFlight >= this.maxInFlight) await new Promise<void>((resolve) => (slotFreed = resolve));
      slotFreed = null;
    }
    const achievedRate = (count * 1000) / Math.max(1, Date.now() - started);
    if (this.inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
    return { achievedRate };
  }
}
