import type { ClientFrame } from '@herald/protocol';

/** How long an ack waits for others to go with it, when no burst is being handled. */
export const ACK_COALESCE_MS = 5;
/** Longest the acks of handled notifications wait for the rest of their burst before they are sent. */
export const ACK_HOLD_MS = 50;
/** This many acks waiting are sent at once, without waiting for the timer. */
const ACK_FLUSH_AT = 100;
/** Most acks in one `POST /v1/acks` or one `acks` frame (the protocol's MAX_ACKS_PER_REQUEST). */
export const MAX_ACKS_PER_BATCH = 500;

export type AckFrame = Extract<ClientFrame, { type: 'ack' | 'acks' }>;

/** The acks waiting to be sent, and how they go: coalesced over a few milliseconds, then in batches. */
export class AckOutbox {
  /** Ids to ack, in the order they were handled; they survive reconnects. */
  private readonly pending = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dueAt = 0;

  /** `flush` sends what is pending now (the client knows the transport); the outbox calls it when due. */
  constructor(private readonly flush: () => void) {}

  /** How many acks wait to be sent. */
  get size(): number {
    return this.pending.size;
  }

  /** Acks `id` (handled by the app), sent within `withinMs`, or at once when many are waiting. */
  add(id: string, withinMs: number): void {
    this.pending.add(id);
    if (this.pending.size >= ACK_FLUSH_AT) this.flush();
    else this.flushWithin(withinMs);
  }

  /** Flushes no later than `ms` from now (sooner if already due sooner); nothing when nothing waits. */
  flushWithin(ms: number): void {
    if (this.pending.size === 0) return;
    const dueAt = Date.now() + ms;
    if (this.timer !== undefined && this.dueAt <= dueAt) return;
    clearTimeout(this.timer);
    this.dueAt = dueAt;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, ms);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Sends what is pending on a WebSocket (`ack`, or `acks` of up to 500); stops, keeping the rest, when `send` cannot send. */
  sendOn(send: (frame: AckFrame) => boolean): void {
    while (this.pending.size > 0) {
      const ids = this.first(MAX_ACKS_PER_BATCH);
      if (!send(ids.length === 1 ? { type: 'ack', id: ids[0]! } : { type: 'acks', ids })) return;
      for (const id of ids) this.forget(id);
    }
  }

  /** The first `max` pending ids, still pending (SSE: until `sent`). */
  first(max: number): string[] {
    const ids: string[] = [];
    for (const id of this.pending) {
      if (ids.length === max) break;
      ids.push(id);
    }
    return ids;
  }

  /** These were sent (SSE): no longer pending. */
  sent(ids: readonly string[]): void {
    for (const id of ids) this.forget(id);
  }

  private forget(id: string): void {
    this.pending.delete(id);
  }
}
