/**
 * Holds each item for `delayMs` after it was added (on the monotonic clock: a wall clock set back does not
 * hold the queue), then hands the items that have waited long enough to
 * `take`, in the order they came: one timer for the whole queue, however many items wait. After `close`,
 * items are taken at once. `take` must not throw; what it returns is awaited only by `close`.
 */
export class DeferredQueue<T> {
  private items: { item: T; at: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closing = false;
  private readonly taking = new Set<Promise<void>>();

  constructor(
    private readonly delayMs: number,
    private readonly take: (items: T[]) => Promise<void>,
  ) {}

  add(item: T): void {
    if (this.closing) {
      this.run([item]);
      return;
    }
    this.items.push({ item, at: performance.now() });
    this.arm();
  }

  /** Items still waiting. */
  get size(): number {
    return this.items.length;
  }

  /** Takes everything now, and every later item at once; resolves when what was taken is done. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const all = this.items.map((w) => w.item);
    this.items = [];
    this.run(all);
    await Promise.all(this.taking);
  }

  private arm(): void {
    if (this.timer || this.items.length === 0) return;
    const wait = Math.max(0, this.items[0]!.at + this.delayMs - performance.now());
    this.timer = setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    this.timer = null;
    const due = performance.now() - this.delayMs;
    let n = 0;
    while (n < this.items.length && this.items[n]!.at <= due) n++;
    this.run(this.items.splice(0, n).map((w) => w.item));
    this.arm();
  }

  private run(items: T[]): void {
    if (items.length === 0) return;
    const done = this.take(items);
    this.taking.add(done);
    void done.finally(() => this.taking.delete(done));
  }
}
