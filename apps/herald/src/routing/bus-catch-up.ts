import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Connection } from '../connections/connection';
import { ConnectionPresence } from '../connections/connection-presence';
import { ConnectionRegistry } from '../connections/connection-registry';
import { DeliveryService } from '../delivery/delivery.service';
import { Replay } from '../delivery/replay';
import { MetricsService } from '../metrics/metrics.service';
import { Bus } from './bus';

/** Connections replayed at once by a catch-up: each is one or a few reads of the record. */
const CATCH_UP_CONCURRENCY = 16;

/**
 * What the bus did not bring while this replica's subscriber was away, read from the record the moment it is
 * back (its subscriptions confirmed, so every later publish comes live) and its presence entries written
 * again (through which the other replicas route to it). Every local connection holds its
 * live frames back; the broadcast streams are caught up (StreamFollower), their frames joining the held ones;
 * then each connection gets the connect replay again (Replay: its open rows and stream offsets, in seq order,
 * skipping what it was sent and has not acked), and its held frames follow, those the replay sent left out.
 * A return during a catch-up runs one more after it.
 */
@Injectable()
export class BusCatchUp implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(BusCatchUp.name);
  private unlisten?: () => void;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly bus: Bus,
    private readonly registry: ConnectionRegistry,
    private readonly presence: ConnectionPresence,
    private readonly delivery: DeliveryService,
    private readonly replays: Replay,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    // While the subscriber is away the streams wait for its return too: sent then with the direct deliveries,
    // in seq order, instead of ahead of them.
    this.delivery.follower.pauseWhile(() => !this.bus.receiving);
    this.unlisten = this.bus.onReturn(() => this.returned());
  }

  /** Shutdown: no new catch-up; the running one ends as the connections close. */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    this.unlisten?.();
    await this.running;
  }

  private returned(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.run();
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = null));
  }

  /** One catch-up of every local connection. Never throws. */
  async run(): Promise<void> {
    const started = Date.now();
    // Live frames held first, in the turn of the return: the bus brings live traffic again from now on, and
    // none of it may go ahead of what the catch-up sends.
    const held: Connection[] = [];
    const busy: Connection[] = [];
    for (const connection of this.registry.all()) (connection.holdLive() ? held : busy).push(connection);
    // Then presence, before the record is read: what is published after the read must find these connections.
    await this.presence.rewriteAll().catch((error: unknown) =>
      this.logger.warn({
        message: 'presence not written again before the catch-up; the beat retries',
        error: (error as Error).message,
      }),
    );
    let sent = 0;
    const replay = async (connection: Connection): Promise<void> => {
      try {
        const replayed = await this.replays.run(connection);
        sent += Math.max(0, replayed - connection.replaySkipped);
      } catch (error) {
        // Its held frames went out (the replay's finally); what it missed is the sweep's.
        this.logger.warn({
          message: 'bus catch-up of a connection failed; the sweep will resend',
          connectionId: connection.id,
          error: (error as Error).message,
        });
      }
    };
    const streamsBehind = await this.delivery.follower.catchUp();
    const queue = [...held];
    // A connection whose own replay is running may have read the record before the return: once it ends
    // (its live frames still held: Connection.holdLive), it is caught up as well.
    const after = busy.map(async (connection) => {
      await connection.afterReplay();
      if (connection.isOpen && connection.holdLive()) await replay(connection);
    });
    const workers = Array.from({ length: Math.min(CATCH_UP_CONCURRENCY, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await replay(next);
    });
    await Promise.all([...workers, ...after]);
    this.metrics.busCatchUpNotifications.inc(sent);
    this.logger.log({
      message: 'bus catch-up done',
      connections: held.length + busy.length,
      streamsBehind,
      sent,
      ms: Date.now() - started,
    });
  }
}
