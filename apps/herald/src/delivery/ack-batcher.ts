import type { AckResult } from '../notifications/notification.types';

interface Waiting {
  notificationId: string;
  userId: string;
  resolve: (result: AckResult) => void;
  reject: (error: unknown) => void;
}

/** How long the first ack of a batch waits for others to join it. */
export const ACK_WINDOW_MS = 2;
/** The most acks written in one statement. */
export const ACK_BATCH_MAX = 500;

/**
 * Coalesces acks from every connection of this replica into one statement per
 * few milliseconds (group commit): a replay of thousands acked at full speed,
 * or a broadcast acked by thousands, costs a few statements instead of one
 * each. While a batch is being written the next one gathers, so under load
 * there is no added wait at all. Each ack still gets its own answer, and is
 * answered only once its batch has committed.
 */
export class AckBatcher {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing = false;

  constructor(private readonly write: (items: { notificationId: string; userId: string }[]) => Promise<AckResult[]>) {}

  ack(notificationId: string, userId: string): Promise<AckResult> {
    return new Promise<AckResult>((resolve, reject) => {
      this.waiting.push({ notificationId, userId, resolve, reject });
      if (!this.writing && this.timer === undefined) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          void this.drain();
        }, ACK_WINDOW_MS);
      }
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, ACK_BATCH_MAX);
        try {
          const results = await this.write(batch.map(({ notificationId, userId }) => ({ notificationId, userId })));
          batch.forEach((item, i) => item.resolve(results[i]!));
        } catch (error) {
          for (const item of batch) item.reject(error);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}
