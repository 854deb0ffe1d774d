/**
 * The notifications sent on one connection and not yet acked, in the order they were sent, so that an ack
 * with `through` settles exactly what this connection was sent before it. Never by `seq`: a `seq` is drawn
 * before its notification commits, so a lower one may arrive later, or not at all on this connection.
 * Bounded: past `max` entries the oldest leaves (it can still be acked by id).
 */
export class SentLog {
  /** A Map keeps insertion order, which is the send order. */
  private readonly order = new Map<string, true>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.order.size;
  }

  has(id: string): boolean {
    return this.order.has(id);
  }

  /** Sent (again) on this connection; a resend keeps its first place. */
  record(id: string): void {
    if (this.order.has(id)) return;
    this.order.set(id, true);
    if (this.order.size > this.max) this.order.delete(this.order.keys().next().value as string);
  }

  /** Acked by id, or settled otherwise: nothing to cover any more. */
  forget(id: string): void {
    this.order.delete(id);
  }

  /** `id` and every entry sent before it, in send order, taken out of the log; null when `id` is not in it. */
  takeThrough(id: string): string[] | null {
    if (!this.order.has(id)) return null;
    const covered: string[] = [];
    for (const key of this.order.keys()) {
      covered.push(key);
      this.order.delete(key);
      if (key === id) break;
    }
    return covered;
  }
}
