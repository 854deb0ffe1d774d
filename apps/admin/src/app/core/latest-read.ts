import { signal } from '@angular/core';
import { describeError } from './api-error';

/**
 * A view's read of the API, made again on demand (opened, Refresh, more rows), with its loading and error
 * state as signals. Only the latest read lands: one that answers after a newer one began is dropped.
 */
export class LatestRead {
  readonly loading = signal(false);
  readonly error = signal<string | null>(null);
  private seq = 0;

  /** Reads with `read`, and hands the answer to `apply` unless a newer read has begun since. */
  async run<T>(read: () => Promise<T>, apply: (value: T) => void): Promise<void> {
    const seq = ++this.seq;
    this.loading.set(true);
    try {
      const value = await read();
      if (seq !== this.seq) return;
      apply(value);
      this.error.set(null);
    } catch (error) {
      if (seq === this.seq) this.error.set(describeError(error));
    } finally {
      if (seq === this.seq) this.loading.set(false);
    }
  }
}
