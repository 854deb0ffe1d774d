import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { REDIS } from '../redis/redis.module';
import { publishOn, RedisClient } from '../redis/redis-client';
import { RedisKeys } from '../redis/redis-keys';
import { Subscriber } from '../redis/subscriber';
import { withTimeout } from '../common/timeout';
import { BroadcastMessage, Bus, BusHandlers, BusMessage, ReplicaMessage, UserMessage } from './bus';
import { PresenceRepository } from './presence.repository';

/** How long a probe may take to come back before the subscriptions are taken for not yet active. */
const PROBE_TIMEOUT_MS = 2000;
/** While the subscriber is away, its return is tried this often (and at once when it says it is back). */
const CONFIRM_RETRY_MS = 1000;

/**
 * The Bus on Redis pub/sub (sharded on a cluster), with a fixed set of channels (ADR 0019): one per replica,
 * which carries what is sent to the users it holds, found in presence; and one for broadcasts, which every
 * replica hears. A replica subscribes to those two once, at start: a connection costs no subscription.
 */
@Injectable()
export class RedisBus extends Bus implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisBus.name);
  private readonly subscriber: Subscriber;
  /** This replica's channel. */
  private readonly channel: string;
  private handlers: BusHandlers | null = null;
  private readonly returnListeners = new Set<() => void>();
  /** Since when the subscriptions may have missed messages (undefined: confirmed active). */
  private awaySince: number | undefined;
  /** Counts every drop, so a confirmation that a drop overtook is not taken for a return. */
  private drops = 0;
  private confirming = false;
  private confirmRetry?: NodeJS.Timeout;
  /** Probes published and not yet heard back: probe id → what hearing it on a channel does. */
  private readonly probes = new Map<string, (channel: string) => void>();
  private closing = false;
  /** Set once the first subscriptions are made: before, the subscriber's connection events are its start. */
  private started = false;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(HERALD_CONFIG) config: HeraldConfig,
    private readonly keys: RedisKeys,
    private readonly presence: PresenceRepository,
    private readonly metrics: MetricsService,
  ) {
    super();
    this.channel = keys.replicaChannel(config.replicaId);
    this.subscriber = new Subscriber(config, 'subscriber', metrics, {
      message: (channel, raw) => this.dispatch(channel, raw),
      down: () => this.dropped('bus subscriber dropped'),
      up: () => void this.back(),
    });
    // On a cluster, a failover can lose the last writes the failed master acknowledged: this replica's presence
    // entries among them, through which the others route to it. Its return writes them again (BusCatchUp).
    if (redis instanceof Cluster) redis.on('-node', () => this.dropped('a Redis Cluster node left'));
  }

  async onModuleInit(): Promise<void> {
    await this.subscriber.subscribe([this.channel, this.keys.broadcastChannel()]);
    this.started = true;
    // Subscribed is not yet heard (a cluster's sharded subscribers settle on the topology): until a probe
    // comes back, what the bus brings is left to the catch-up, as after a drop.
    await this.probe().catch(() => this.dropped('bus subscriptions not confirmed at start'));
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    clearTimeout(this.confirmRetry);
    this.returnListeners.clear();
    await this.subscriber.close();
  }

  get receiving(): boolean {
    return this.awaySince === undefined;
  }

  onReturn(listener: () => void): () => void {
    this.returnListeners.add(listener);
    return () => this.returnListeners.delete(listener);
  }

  private dropped(why: string): void {
    if (this.closing || !this.started) return;
    this.drops += 1;
    if (this.awaySince !== undefined) return;
    this.awaySince = Date.now();
    this.logger.warn({ message: `${why}; catching up on its return` });
    this.retryConfirm();
  }

  private retryConfirm(): void {
    clearTimeout(this.confirmRetry);
    this.confirmRetry = setTimeout(() => void this.back(), CONFIRM_RETRY_MS);
  }

  /**
   * The subscriber may be back. Confirmed by a probe published on both channels and heard on both: from then
   * on the bus brings every publish, and whatever came before is in the record for the catch-up to read. Not
   * confirmed (not resubscribed yet, Redis away): tried again shortly.
   */
  private async back(): Promise<void> {
    const since = this.awaySince;
    if (since === undefined || this.closing || this.confirming) return;
    this.confirming = true;
    const drops = this.drops;
    try {
      await this.probe();
    } catch (error) {
      this.logger.warn({ message: 'bus subscriber not confirmed yet', error: (error as Error).message });
      if (!this.closing) this.retryConfirm();
      return;
    } finally {
      this.confirming = false;
    }
    if (this.closing) return;
    if (this.drops !== drops) {
      this.retryConfirm();
      return;
    }
    clearTimeout(this.confirmRetry);
    this.awaySince = undefined;
    this.metrics.busReturns.inc();
    this.logger.log({ message: 'bus subscriber back; subscriptions confirmed', awayMs: Date.now() - since });
    for (const listener of this.returnListeners) listener();
  }

  /** Publishes a probe on this replica's channel and the broadcast channel; resolves once both came back. */
  private async probe(): Promise<void> {
    const probeId = randomUUID();
    const channels = [this.channel, this.keys.broadcastChannel()];
    const heard = new Set<string>();
    const done = new Promise<void>((resolve) =>
      this.probes.set(probeId, (channel) => {
        heard.add(channel);
        if (heard.size === channels.length) resolve();
      }),
    );
    try {
      const raw = JSON.stringify({ kind: 'probe', probeId });
      await Promise.all(channels.map((channel) => publishOn(this.redis, channel, raw)));
      await withTimeout(done, PROBE_TIMEOUT_MS, 'probe');
    } finally {
      this.probes.delete(probeId);
    }
  }

  setHandlers(handlers: BusHandlers): void {
    this.handlers = handlers;
  }

  async publishToUsers(userIds: string[], message: UserMessage): Promise<number> {
    const holders = await this.presence.holders(userIds);
    const byReplica = new Map<string, string[]>();
    holders.forEach((connections, i) => {
      // An SSE heartbeat answer or a disconnect is for one connection: only its replica is told.
      const replicas =
        message.kind === 'deliver'
          ? new Set(Object.values(connections))
          : [connections[message.connectionId]].filter((r): r is string => r !== undefined);
      for (const replica of replicas) {
        const users = byReplica.get(replica);
        if (users) users.push(userIds[i]!);
        else byReplica.set(replica, [userIds[i]!]);
      }
    });
    // Auto-pipelined: what many requests publish in the same tick goes in one write (per node).
    const reached = await Promise.all(
      [...byReplica].map(async ([replica, users]) => {
        const out: ReplicaMessage = { ...message, userIds: users };
        const receivers = await publishOn(this.redis, this.keys.replicaChannel(replica), JSON.stringify(out));
        return receivers > 0 ? users : [];
      }),
    );
    this.metrics.busMessages.inc({ direction: 'out' }, byReplica.size);
    return new Set(reached.flat()).size;
  }

  async publishBroadcast(message: BroadcastMessage): Promise<void> {
    await publishOn(this.redis, this.keys.broadcastChannel(), JSON.stringify(message));
    this.metrics.busMessages.inc({ direction: 'out' });
  }

  private dispatch(channel: string, raw: string): void {
    let message: BusMessage;
    try {
      message = JSON.parse(raw) as BusMessage;
    } catch {
      this.logger.error({ message: 'unparseable bus message', channel });
      return;
    }
    if (message.kind === 'probe') {
      this.probes.get(message.probeId)?.(channel);
      return;
    }
    this.metrics.busMessages.inc({ direction: 'in' });
    if (!this.handlers) return;
    // From the subscriber's drop until its return is confirmed, a notification is left to the catch-up the
    // return starts (BusCatchUp): it is in the record already, and the catch-up sends what the bus missed and
    // this together in seq order, where sent now it would go ahead of older ones the bus missed.
    if (!this.receiving && (message.kind === 'deliver' || message.kind === 'broadcast')) return;
    if (channel === this.keys.broadcastChannel() && message.kind === 'broadcast') {
      this.handlers.broadcast(message);
      return;
    }
    if (channel !== this.channel || message.kind === 'broadcast') {
      this.logger.warn({ message: 'bus message on unexpected channel', channel, kind: message.kind });
      return;
    }
    for (const userId of message.userIds) {
      if (message.kind === 'deliver') this.handlers.deliver(userId, message);
      else if (message.kind === 'alive') this.handlers.alive(userId, message);
      else this.handlers.disconnect(userId, message);
    }
  }
}
