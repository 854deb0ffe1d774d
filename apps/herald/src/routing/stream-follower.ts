import { Logger } from '@nestjs/common';
import { KeyedChain } from '../common/keyed-chain';
import type { StoredNotification } from '../record/notification.types';
import { StreamRepository } from '../record/stream.repository';
import type { BusNotification } from './bus';
import { toBusNotification } from '../delivery/notification-frame';

/** An offset that arrives ahead of one still missing waits this long for it before the gap is read. */
export const GAP_WAIT_MS = 50;

/**
 * A replica's place in each broadcast stream (ADR 0007): the last offset it handled. Offsets are gapless and
 * follow commit order, so a jump means a bus message is late or lost: after `GAP_WAIT_MS` the missing ones are
 * read from PostgreSQL and handled first, in order. `catchUp` compares with every stream's head (on a timer,
 * and when the Redis subscriber is back), so what was published while the bus was away is handled too. Each
 * stream is handled one offset at a time, in order; an offset already handled is skipped.
 */
export class StreamFollower {
  private readonly logger = new Logger(StreamFollower.name);
  private readonly handled = new Map<number, number>();
  private readonly chains = new KeyedChain<number>();
  private started = false;
  private paused: () => boolean = () => false;

  constructor(
    private readonly streams: StreamRepository,
    /** Sends one stream notification to this replica's users; resolves once it is done. */
    private readonly deliver: (notification: BusNotification) => Promise<void>,
    private readonly onGap: (fetched: number) => void = () => undefined,
  ) {}

  /** Starts from the heads as they are now: what came before is the replay's. */
  async start(): Promise<void> {
    for (const [id, head] of await this.streams.heads()) {
      if (!this.handled.has(id)) this.handled.set(id, head);
    }
    this.started = true;
  }

  /** A broadcast from the bus. */
  receive(notification: BusNotification): Promise<void> {
    const stream = notification.stream!;
    return this.inOrder(stream.id, async () => {
      // A stream this replica has not seen was made after `start`: every offset of it is new.
      const last = this.handled.get(stream.id) ?? 0;
      if (stream.offset <= last) return;
      if (stream.offset > last + 1) {
        await new Promise((resolve) => setTimeout(resolve, GAP_WAIT_MS));
        await this.fill(stream.id, stream.offset - 1);
      }
      if (stream.offset <= (this.handled.get(stream.id) ?? 0)) return;
      // Marked handled once sent: a send that failed (PostgreSQL away) is read again by the next catch-up.
      await this.deliver(notification);
      this.handled.set(stream.id, stream.offset);
    });
  }

  /**
   * The periodic check (every second): skipped while `paused` says so, i.e. while the bus subscriber is away.
   * Its return catches the streams up together with the direct deliveries, in seq order (BusCatchUp).
   */
  tick(): Promise<number> {
    return this.paused() ? Promise.resolve(0) : this.catchUp();
  }

  pauseWhile(paused: () => boolean): void {
    this.paused = paused;
  }

  /** Reads every stream's head and handles whatever this replica has not. Never throws. */
  async catchUp(): Promise<number> {
    if (!this.started) return 0;
    let heads: Map<number, number>;
    try {
      heads = await this.streams.heads();
    } catch (error) {
      this.logger.warn({ message: 'could not read the stream heads', error: (error as Error).message });
      return 0;
    }
    let behind = 0;
    const work: Promise<void>[] = [];
    for (const [id, head] of heads) {
      if (head > (this.handled.get(id) ?? 0)) {
        behind++;
        work.push(this.inOrder(id, () => this.fill(id, head)));
      }
    }
    await Promise.all(work);
    return behind;
  }

  /** Reads and handles the offsets after the last handled one, through `through`. */
  private async fill(streamId: number, through: number): Promise<void> {
    const last = this.handled.get(streamId) ?? 0;
    if (through <= last) return;
    const missing: StoredNotification[] = await this.streams.between(streamId, last, through);
    this.onGap(missing.length);
    for (const notification of missing) {
      await this.deliver(toBusNotification(notification));
      this.handled.set(streamId, notification.stream!.offset);
    }
    // Expired ones were not read: nothing to send of them.
    this.handled.set(streamId, Math.max(this.handled.get(streamId) ?? 0, through));
  }

  private inOrder(streamId: number, work: () => Promise<void>): Promise<void> {
    const run = this.chains.run(streamId, work);
    run.catch((error: unknown) =>
      this.logger.error({ message: 'stream delivery failed', streamId, error: (error as Error).message }),
    );
    return run;
  }
}
