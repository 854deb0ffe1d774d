import { RedeliveryJobData } from './queues';

/** What the timers call: PostgreSQL's checks and hand-offs, the metrics, the log. */
export interface TimerWork {
  /** Re-reads each row and resends, parks or fails it (RedeliveryService.checkAll); outcomes counted. */
  checkAll(checks: RedeliveryJobData[]): Promise<Partial<Record<string, number>>>;
  /** Hands off to rows what `userIds` still hold open of the broadcast (StreamRepository.handOff). */
  handOff(notificationId: string, userIds: string[], sentAt: Date): Promise<number>;
  counted(outcomes: Partial<Record<string, number>>): void;
  warn(entry: Record<string, unknown>): void;
}

/**
 * Checks due within the same slot of this length share one timer firing: a check runs at most one slot
 * late, never early. The deliveries' backstop (`next_attempt_at`) allows for it (DeliveryService.record).
 */
export const CHECK_SLOT_MS = 250;
/** A broadcast's hand-off that failed (PostgreSQL away) is tried again this much later, this many times. */
const HAND_OFF_RETRY_MS = 1000;
const HAND_OFF_TRIES = 10;

/**
 * A broadcast this replica sent from its stream (ADR 0007): the users it went to that have not acked it
 * here yet. An ack written by this replica takes its user out (`acked`); at the check, the ones left are
 * handed off to rows in one statement, or none is needed at all.
 */
interface StreamSend {
  notificationId: string;
  users: Set<string>;
  sentAt: Date;
  tries: number;
}

interface Slot {
  rows: RedeliveryJobData[];
  streams: StreamSend[];
}

/**
 * The per-replica timer structure of redelivery (ADR 0009): what this replica sent is checked by this
 * replica when its ack timeout runs out, from memory, with no job in Redis and no row written per send.
 *
 * - A send recorded on a `deliveries` row (a user-list send, a resend) is checked by
 *   `RedeliveryService.checkAll`, which re-reads the row and resends, parks or fails it.
 * - A broadcast sent from its stream is checked against this replica's own acks; the users still
 *   unacked then are handed off to rows (`herald_hand_off`) and go the same way.
 *
 * Nothing here needs to survive the replica: a row carries `next_attempt_at`, past which the sweep (a
 * BullMQ repeatable job, on any replica) takes it; and a broadcast's recipients were connected to this
 * replica, so when it dies they reconnect, and the replay sends what their cursors still hold open.
 */
export class RedeliveryTimers {
  /** Checks by slot number (due time / CHECK_SLOT_MS, rounded up). */
  private readonly slots = new Map<number, Slot>();
  /** Broadcast sends waiting for their check, by notification id, so an ack finds its send at once. */
  private readonly streamSends = new Map<string, StreamSend>();
  private timer: NodeJS.Timeout | null = null;
  private armedSlot = Infinity;
  /** Slots run one after the other: a slow PostgreSQL slows the checks, never piles them up in parallel. */
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly to: TimerWork) {}

  /** How many checks wait: row checks, and broadcast sends. */
  get waiting(): { rows: number; streams: number } {
    let rows = 0;
    for (const slot of this.slots.values()) rows += slot.rows.length;
    return { rows, streams: this.streamSends.size };
  }

  /** Checks, each after its own delay, the sends just recorded on rows (`delayMs` draws each delay). */
  schedule(items: RedeliveryJobData[], delayMs: (attempt: number) => number): void {
    if (this.closed) return;
    const now = Date.now();
    for (const item of items) this.slotAt(now + delayMs(item.attempt)).rows.push(item);
  }

  /** Checks, at `dueAt`, a broadcast's send to `userIds` from its stream. */
  scheduleStream(notificationId: string, userIds: string[], sentAt: Date, dueAt: number): void {
    if (this.closed || userIds.length === 0) return;
    const waiting = this.streamSends.get(notificationId);
    if (waiting) {
      for (const userId of userIds) waiting.users.add(userId);
      return;
    }
    const send: StreamSend = { notificationId, users: new Set(userIds), sentAt, tries: 0 };
    this.streamSends.set(notificationId, send);
    this.slotAt(dueAt).streams.push(send);
  }

  /** An ack of the notification by the user was written (or found it closed): its broadcast check skips the user. */
  acked(notificationId: string, userId: string): void {
    this.streamSends.get(notificationId)?.users.delete(userId);
  }

  /**
   * Shutdown: the timers stop. Rows not checked are the sweep's at their `next_attempt_at`; the recipients
   * of broadcasts not checked are being disconnected, and their reconnection replays what is open.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.slots.clear();
    this.streamSends.clear();
    await this.running;
  }

  private slotAt(dueAt: number): Slot {
    const key = Math.ceil(dueAt / CHECK_SLOT_MS);
    let slot = this.slots.get(key);
    if (!slot) {
      this.slots.set(key, (slot = { rows: [], streams: [] }));
      if (key < this.armedSlot) this.arm(key);
    }
    return slot;
  }

  private arm(key: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedSlot = key;
    this.timer = setTimeout(() => this.fire(), Math.max(0, key * CHECK_SLOT_MS - Date.now()));
    this.timer.unref();
  }

  /** Takes every slot that is due, runs it (after the ones before), and arms the timer for the next. */
  private fire(): void {
    this.timer = null;
    this.armedSlot = Infinity;
    const now = Math.floor(Date.now() / CHECK_SLOT_MS);
    const due: Slot[] = [];
    let next = Infinity;
    for (const [key, slot] of [...this.slots].sort(([a], [b]) => a - b)) {
      if (key <= now) {
        due.push(slot);
        this.slots.delete(key);
      } else next = Math.min(next, key);
    }
    if (next < Infinity) this.arm(next);
    for (const slot of due) this.running = this.running.then(() => this.run(slot));
  }

  /** Never throws: a row check that fails is the sweep's; a hand-off that fails is tried again. */
  private async run(slot: Slot): Promise<void> {
    if (this.closed) return;
    if (slot.rows.length > 0) {
      await this.to.checkAll(slot.rows).then(
        (outcomes) => this.to.counted(outcomes),
        (error: unknown) =>
          this.to.warn({
            message: 'redelivery checks failed; the sweep will take their deliveries',
            count: slot.rows.length,
            error: (error as Error).message,
          }),
      );
    }
    for (const send of slot.streams) await this.handOff(send);
  }

  /**
   * The users of a broadcast's send that did not ack it here: whatever their cursors still hold open becomes
   * a row, sent once at the send's time (`herald_hand_off`), and is checked as a row at once (resent to an
   * online user, parked for an offline one).
   */
  private async handOff(send: StreamSend): Promise<void> {
    if (this.streamSends.get(send.notificationId) === send) this.streamSends.delete(send.notificationId);
    if (send.users.size === 0 || this.closed) return;
    const userIds = [...send.users];
    try {
      const handed = await this.to.handOff(send.notificationId, userIds, send.sentAt);
      this.to.counted({ handedOff: handed });
      if (handed === 0) return;
      const outcomes = await this.to.checkAll(
        userIds.map((userId) => ({ notificationId: send.notificationId, userId, attempt: 1 })),
      );
      this.to.counted(outcomes);
    } catch (error) {
      if (++send.tries < HAND_OFF_TRIES && !this.closed) {
        this.streamSends.set(send.notificationId, send);
        this.slotAt(Date.now() + HAND_OFF_RETRY_MS).streams.push(send);
      }
      this.to.warn({
        message: 'could not check a broadcast send; tried again shortly',
        notificationId: send.notificationId,
        users: userIds.length,
        tries: send.tries,
        error: (error as Error).message,
      });
    }
  }
}
