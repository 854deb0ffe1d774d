export interface BatcherOptions<I, R> {
  /**
   * How long the first item of a batch waits for others to join it, while there is company to wait for:
   * only when the batch before it held more than one item. Otherwise (and with 0) it waits until the end
   * of the current turn of the event loop (`setImmediate`): what arrived together goes together, and a
   * lone item under light load is not delayed.
   */
  windowMs: number;
  /**
   * Wait `windowMs` for company even after a batch of one: for writes nobody waits on (acks), where fewer,
   * larger statements matter more than a few milliseconds.
   */
  alwaysWait?: boolean;
  /** The most items written in one call. */
  maxBatch: number;
  /** How many batches may be written at once; while they are, the next one gathers. */
  maxInFlight: number;
  /**
   * When a batch write fails, each of its items is written alone with this (so one bad item fails only
   * its own caller). Without it, every caller of the batch gets the error.
   */
  alone?: (item: I) => Promise<R>;
}

interface Waiting<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: coalesces items from many callers into one write per batch (one statement, one commit),
 * and answers each caller with its own result once its batch is written. Under load there is no added
 * wait: while batches are being written, the next one gathers.
 */
export class Batcher<I, R> {
  private waiting: Waiting<I, R>[] = [];
  private armed = false;
  private inFlight = 0;
  private lastBatchSize = 0;

  constructor(
    private readonly write: (items: I[]) => Promise<R[]>,
    private readonly options: BatcherOptions<I, R>,
  ) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.arm();
    });
  }

  /** Items waiting for a batch, not counting those being written. */
  get pending(): number {
    return this.waiting.length;
  }

  private arm(): void {
    if (this.armed || this.inFlight >= this.options.maxInFlight || this.waiting.length === 0) return;
    this.armed = true;
    const fire = (): void => {
      this.armed = false;
      void this.flush();
    };
    if (this.options.windowMs > 0 && (this.lastBatchSize > 1 || this.options.alwaysWait)) {
      setTimeout(fire, this.options.windowMs);
    } else setImmediate(fire);
  }

  private async flush(): Promise<void> {
    if (this.inFlight >= this.options.maxInFlight || this.waiting.length === 0) return;
    const batch = this.waiting.splice(0, this.options.maxBatch);
    this.lastBatchSize = batch.length;
    this.inFlight++;
    try {
      await this.settle(batch);
    } finally {
      this.inFlight--;
      // What gathered meanwhile has waited long enough: it goes at once.
      if (this.waiting.length > 0) void this.flush();
    }
  }

  private async settle(batch: Waiting<I, R>[]): Promise<void> {
    let results: R[];
    try {
      results = await this.write(batch.map((w) => w.item));
    } catch (error) {
      const alone = this.options.alone;
      if (!alone || batch.length === 1) {
        for (const w of batch) w.reject(error);
        return;
      }
      await Promise.all(batch.map((w) => alone(w.item).then(w.resolve, w.reject)));
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  }
}
