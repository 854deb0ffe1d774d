import type { NotificationFrame } from '@herald/protocol';
import { ACK_COALESCE_MS, ACK_HOLD_MS, type AckOutbox } from './acks.js';
import { RecentIds } from './dedup.js';
import { messageOf } from './http.js';
import type { ClientEvents, Notification, NotificationHandler } from './types.js';

export interface DispatcherOptions {
  ackMode: 'auto' | 'manual';
  /** Notification ids remembered for dedup, across reconnects. */
  dedupWindow: number;
  /** The client is closing: what arrives now is left for the next session. */
  stopping(): boolean;
  /** The client's public `ack` (what a handled notification and `notification.ack()` call). */
  ack(id: string): void;
  error(event: ClientEvents['error']): void;
}

/**
 * Hands each notification to the app's handler once (dedup by id across reconnects), one at a time and
 * lowest `seq` first, and acks it: after the handler (auto mode) or when the app says so (manual).
 */
export class Dispatcher {
  private handler: NotificationHandler | undefined;
  /** Handled by the app: a copy is only acked again. */
  private readonly seen: RecentIds;
  private readonly acked: RecentIds;
  private readonly inProgress = new Set<string>();
  private queue: NotificationFrame[] = [];
  private dispatching = false;

  constructor(
    private readonly acks: AckOutbox,
    private readonly options: DispatcherOptions,
  ) {
    this.seen = new RecentIds(options.dedupWindow);
    this.acked = new RecentIds(options.dedupWindow);
  }

  /** Sets the handler; notifications that arrived before it wait for it. */
  onNotification(handler: NotificationHandler): () => void {
    this.handler = handler;
    this.scheduleDispatch();
    return () => {
      if (this.handler === handler) this.handler = undefined;
    };
  }

  /** A notification frame arrived on the current connection. */
  arrived(frame: NotificationFrame): void {
    this.acks.arrived(frame.id);
    // Closing: the app is done with us; what it has not acked comes back next session.
    if (this.options.stopping()) return;
    if (this.seen.has(frame.id)) {
      // Sent again because our ack did not arrive: the app has it, so only the ack is repeated.
      if (this.options.ackMode === 'auto' || this.acked.has(frame.id)) this.queueAck(frame.id);
      return;
    }
    if (this.inProgress.has(frame.id) || this.queue.some((q) => q.id === frame.id)) return;
    let index = this.queue.length;
    while (index > 0 && this.queue[index - 1]!.seq > frame.seq) index--;
    this.queue.splice(index, 0, frame);
    this.scheduleDispatch();
  }

  /** Acks a notification by id, once; queued while disconnected. */
  ack(id: string): void {
    if (this.acked.has(id)) return;
    this.acked.add(id);
    this.queueAck(id);
  }

  private scheduleDispatch(): void {
    // A microtask: frames that arrived in the same read are all queued (and sorted) first.
    queueMicrotask(() => void this.dispatch());
  }

  /** Hands queued notifications to the handler one at a time, lowest seq first. */
  private async dispatch(): Promise<void> {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.queue.length > 0 && this.handler) {
        const frame = this.queue.shift()!;
        const handler = this.handler;
        this.inProgress.add(frame.id);
        try {
          await handler(this.toNotification(frame));
          this.seen.add(frame.id);
          if (this.options.ackMode === 'auto') this.options.ack(frame.id);
        } catch (error) {
          // Not acked: the server sends it again later, and the handler gets another chance.
          this.options.error({
            message: `notification handler failed for ${frame.id}: ${messageOf(error)}`,
            cause: error,
          });
        } finally {
          this.inProgress.delete(frame.id);
        }
        // A burst's acks go out together soon after it is handled (or by the hold timer, see queueAck).
        if (this.queue.length === 0) this.acks.flushWithin(ACK_COALESCE_MS);
      }
    } finally {
      this.dispatching = false;
      this.acks.flushWithin(ACK_COALESCE_MS);
    }
  }

  private toNotification(frame: NotificationFrame): Notification {
    const notification: Notification = {
      id: frame.id,
      seq: frame.seq,
      event: frame.event,
      payload: frame.payload,
      timestamp: frame.timestamp,
      attempt: frame.attempt,
      ack: () => this.options.ack(frame.id),
    };
    if (frame.topic !== undefined) notification.topic = frame.topic;
    return notification;
  }

  private queueAck(id: string): void {
    // Acks wait ACK_COALESCE_MS for others to go with them. While a burst is being handled, they wait for the
    // end of it, and at most ACK_HOLD_MS however long the next handler takes.
    this.acks.add(id, this.dispatching && this.queue.length > 0 ? ACK_HOLD_MS : ACK_COALESCE_MS);
  }
}
