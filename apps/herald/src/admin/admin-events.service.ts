import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import type { AdminEvent } from '@herald/protocol';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { UnavailableError } from '../common/errors';
import { DrainState } from '../common/lifecycle.module';
import { openEventStream } from '../common/event-stream';
import type { AdminRequest } from './admin.guard';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { LiveEvent, LiveEvents } from '../delivery/live-events';
import { AdminRepository } from '../record/admin.repository';
import { REDIS } from '../redis/redis.module';
import { publishOn, RedisClient } from '../redis/redis-client';
import { Subscriber } from '../redis/subscriber';
import { MetricsService } from '../metrics/metrics.service';
import { RedisKeys } from '../redis/redis-keys';
import { AdminService } from './admin.service';

/** Progress of notifications is read and sent at most this often, per replica. */
const PROGRESS_EVERY_MS = 250;
const STREAM_HEARTBEAT_MS = 15_000;
/** How often the overview's counters are pushed to this replica's admin streams (only while there are some). */
const STATS_EVERY_MS = 5_000;
/**
 * A replica holding admin streams says so on the admin channel when the first opens and at every stats
 * push; every replica makes and publishes admin events only while someone watches (it heard this within
 * WATCHED_FOR_MS). Nobody watching, an ack costs no Redis publish and no progress query.
 */
const WATCHING = '{"type":"watching"}';
const WATCHED_FOR_MS = 3 * STATS_EVERY_MS;
/** An admin stream with more than this waiting to be sent is closed (its console reconnects and reads afresh). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * The admin console's live feed. Each replica turns what happens on its live
 * side into admin events on one Redis channel; each replica relays that
 * channel to the admin streams (`GET /admin/api/events`) it holds. So every
 * admin sees every replica's connections open and close, and each
 * notification's delivery counts move.
 */
@Injectable()
export class AdminEventsService implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(AdminEventsService.name);
  private subscriber: Subscriber | null = null;
  private readonly streams = new Set<ServerResponse>();
  private readonly expiries = new Map<ServerResponse, NodeJS.Timeout>();
  private readonly changed = new Set<string>();
  private progressTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private offLive: (() => void) | undefined;
  /** Until when an admin stream is known to be open on some replica. */
  private watchedUntil = 0;

  constructor(
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly live: LiveEvents,
    private readonly admin: AdminRepository,
    private readonly stats: AdminService,
    private readonly drain: DrainState,
    private readonly metrics: MetricsService,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.adminPassword === '') return;
    this.subscriber = new Subscriber(this.config, 'admin-subscriber', this.metrics, {
      message: (_channel, raw) => this.relay(raw),
    });
    await this.subscriber.subscribe([this.keys.adminChannel()]);
    this.offLive = this.live.on((event) => this.onLive(event));
    this.live.setInterest(() => this.streams.size > 0 || Date.now() < this.watchedUntil);
    this.heartbeat = setInterval(() => this.writeAll(': ping\n\n'), STREAM_HEARTBEAT_MS);
    this.statsTimer = setInterval(() => void this.pushStats(), STATS_EVERY_MS);
  }

  /** The overview's counters, pushed so the console never polls; read only while someone watches here. */
  private async pushStats(): Promise<void> {
    if (this.streams.size === 0) return;
    this.announceWatching();
    try {
      this.writeAll(`event: stats\ndata: ${JSON.stringify(await this.stats.stats())}\n\n`);
    } catch (error) {
      this.logger.warn({ message: 'admin stats not pushed', error: (error as Error).message });
    }
  }

  /** Before the HTTP server closes (it waits for open responses): end every admin stream, so shutdown is not held up. */
  beforeApplicationShutdown(): void {
    for (const stream of [...this.streams]) this.closeStream(stream, 1001, 'server shutting down');
  }

  async onApplicationShutdown(): Promise<void> {
    this.offLive?.();
    clearInterval(this.heartbeat);
    clearInterval(this.statsTimer);
    clearTimeout(this.progressTimer);
    await this.subscriber?.close();
  }

  /** Turns the response into this admin's event stream, until either side ends it or the session expires. */
  open(request: AdminRequest, reply: FastifyReply): void {
    if (this.drain.isDraining) throw new UnavailableError('server shutting down, reconnect');
    const expiresAt = request.adminSessionExpiresAt ?? 0;
    const response = openEventStream(reply, 2000);
    this.streams.add(response);
    // A stream must not outlive its session: the console logs in again.
    this.expiries.set(
      response,
      setTimeout(
        () => this.closeStream(response, 1008, 'session expired'),
        Math.max(0, Math.min(expiresAt - Date.now(), 2_147_483_647)),
      ),
    );
    response.once('close', () => this.forget(response));
    if (this.streams.size === 1) this.announceWatching();
    // Nothing else listens for a write error on this response: unhandled, it would end the process.
    response.on('error', () => this.forget(response));
    void this.pushStats();
  }

  get watchers(): number {
    return this.streams.size;
  }

  private onLive(event: LiveEvent): void {
    switch (event.type) {
      case 'connection.opened': {
        const { connection } = event;
        this.publish({ type: 'connection.opened', connection });
        return;
      }
      case 'connection.closed':
        this.publish(event);
        return;
      case 'user.acked':
        this.publish(event);
        return;
      case 'deliveries.changed':
        for (const id of event.notificationIds) this.changed.add(id);
        this.progressTimer ??= setTimeout(() => void this.flushProgress(), PROGRESS_EVERY_MS);
        return;
    }
  }

  /** The counts of every notification whose deliveries moved since the last flush, in one query. */
  private async flushProgress(): Promise<void> {
    const ids = [...this.changed];
    this.changed.clear();
    try {
      for (const progress of await this.admin.progressOf(ids)) {
        this.publish({ type: 'notification.progress', ...progress });
      }
    } catch (error) {
      this.logger.warn({ message: 'admin progress not sent', error: (error as Error).message });
    }
    // The next read only once this one is done: a slow database does not pile queries up.
    this.progressTimer =
      this.changed.size > 0 ? setTimeout(() => void this.flushProgress(), PROGRESS_EVERY_MS) : undefined;
  }

  /** Writes to every stream; one that cannot keep up (over MAX_BUFFERED_BYTES waiting) is closed, and reconnects. */
  private writeAll(text: string): void {
    for (const stream of [...this.streams]) {
      if (stream.writableEnded || stream.destroyed) this.forget(stream);
      else if (stream.writableLength > MAX_BUFFERED_BYTES) this.closeStream(stream, 1008, 'too slow: events piled up');
      else stream.write(text);
    }
  }

  private closeStream(stream: ServerResponse, code: number, reason: string): void {
    this.forget(stream);
    if (!stream.writableEnded && !stream.destroyed) {
      stream.end(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    }
  }

  private forget(stream: ServerResponse): void {
    this.streams.delete(stream);
    clearTimeout(this.expiries.get(stream));
    this.expiries.delete(stream);
  }

  private publish(event: AdminEvent): void {
    publishOn(this.redis, this.keys.adminChannel(), JSON.stringify(event)).catch((error: unknown) =>
      this.logger.warn({ message: 'admin event not published', error: (error as Error).message }),
    );
  }

  private announceWatching(): void {
    publishOn(this.redis, this.keys.adminChannel(), WATCHING).catch((error: unknown) =>
      this.logger.warn({ message: 'admin watching not announced', error: (error as Error).message }),
    );
  }

  private relay(raw: string): void {
    if (raw === WATCHING) {
      this.watchedUntil = Date.now() + WATCHED_FOR_MS;
      return;
    }
    if (this.streams.size === 0) return;
    let type: string;
    try {
      type = (JSON.parse(raw) as AdminEvent).type;
    } catch {
      return;
    }
    this.writeAll(`event: ${type}\ndata: ${raw}\n\n`);
  }
}
