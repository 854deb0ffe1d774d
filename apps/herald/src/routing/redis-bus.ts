import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { createRedis, REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';
import { Batcher } from '../common/batcher';
import { withTimeout } from '../common/timeout';
import { BroadcastMessage, Bus, BusHandlers, BusMessage, UserMessage } from './bus';

const SUBSCRIBE_TIMEOUT_MS = 5000;
/** A return whose PING was not answered, on a subscriber that stayed connected, is tried again this soon. */
const CONFIRM_RETRY_MS = 1000;
/** What a settled subscription waits for: one shared promise, not one kept per subscribed user. */
const SUBSCRIBED: Promise<unknown> = Promise.resolve();

/** A user's subscription: how many local connections hold it, and what they all wait for. */
interface UserSubscription {
  connections: number;
  active: Promise<unknown>;
}

/** The Bus on Redis pub/sub: one channel per user, one for broadcasts. */
@Injectable()
export class RedisBus extends Bus implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisBus.name);
  private readonly subscriber: Redis;
  private handlers: BusHandlers | null = null;
  /** Local connections per subscribed user, and the subscription they all wait for. */
  private readonly userSubscriptions = new Map<string, UserSubscription>();
  private readonly returnListeners = new Set<() => void>();
  /** Since when the subscriber connection has been down (undefined: it is up). */
  private awaySince: number | undefined;
  private confirmRetry?: NodeJS.Timeout;
  private closing = false;
  /**
   * The channels of users subscribed together go in one SUBSCRIBE (connections arriving together); it is
   * bounded in time: a stalled Redis fails those connections' setups (1013, the client retries) instead of
   * hanging them.
   */
  private readonly subscribes = new Batcher<string, void>(
    async (channels) => {
      await withTimeout(this.subscriber.subscribe(...channels), SUBSCRIBE_TIMEOUT_MS, 'SUBSCRIBE');
      return channels.map(() => undefined);
    },
    { windowMs: 0, maxBatch: 500, maxInFlight: 1 },
  );

  /**
   * Channels of users whose last local connection closed, unsubscribed together in one UNSUBSCRIBE at the end
   * of the turn (a proxy restart closes thousands of connections at once). A user who connects again before
   * then keeps the channel: it was never left.
   */
  private readonly unsubscribing = new Set<string>();
  private unsubscribeArmed = false;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(HERALD_CONFIG) config: HeraldConfig,
    private readonly keys: RedisKeys,
    private readonly metrics: MetricsService,
  ) {
    super();
    this.subscriber = createRedis(config, 'subscriber');
  }

  async onModuleInit(): Promise<void> {
    this.subscriber.on('message', (channel: string, raw: string) => this.dispatch(channel, raw));
    this.subscriber.on('close', () => this.dropped());
    this.subscriber.on('end', () => this.dropped());
    this.subscriber.on('ready', () => void this.back());
    await this.subscriber.subscribe(this.keys.broadcastChannel());
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    clearTimeout(this.confirmRetry);
    this.returnListeners.clear();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
    this.subscriber.removeAllListeners();
  }

  get receiving(): boolean {
    return this.awaySince === undefined;
  }

  onReturn(listener: () => void): () => void {
    this.returnListeners.add(listener);
    return () => this.returnListeners.delete(listener);
  }

  private dropped(): void {
    if (this.closing || this.awaySince !== undefined) return;
    this.awaySince = Date.now();
    this.logger.warn({ message: 'bus subscriber dropped; catching up on its return' });
  }

  /**
   * The subscriber reconnected. ioredis writes the SUBSCRIBE of every channel before 'ready' is emitted (a
   * tick later), so the reply to a PING sent now comes after Redis ran them: from then on the bus brings
   * every publish, and whatever came before is in the record for the catch-up to read.
   */
  private async back(): Promise<void> {
    const since = this.awaySince;
    if (since === undefined || this.closing) return;
    try {
      await withTimeout(this.subscriber.ping(), SUBSCRIBE_TIMEOUT_MS, 'PING');
    } catch (error) {
      // Dropped again: its 'close' comes, and the next 'ready' tries again. Stalled but still connected: tried
      // again shortly, since until then the bus's notifications wait for the catch-up (dispatch).
      this.logger.warn({ message: 'bus subscriber back but not confirmed', error: (error as Error).message });
      if (this.subscriber.status === 'ready' && this.awaySince === since && !this.closing) {
        clearTimeout(this.confirmRetry);
        this.confirmRetry = setTimeout(() => void this.back(), CONFIRM_RETRY_MS);
      }
      return;
    }
    if (this.awaySince !== since || this.closing) return;
    this.awaySince = undefined;
    this.metrics.busReturns.inc();
    this.logger.log({ message: 'bus subscriber back; subscriptions confirmed', awayMs: Date.now() - since });
    for (const listener of this.returnListeners) listener();
  }

  setHandlers(handlers: BusHandlers): void {
    this.handlers = handlers;
  }

  async publishToUsers(userIds: string[], message: UserMessage): Promise<number> {
    const raw = JSON.stringify(message);
    // One PUBLISH per user, auto-pipelined: what many requests publish in the same tick goes in one write.
    const receivers = await Promise.all(
      userIds.map((userId) => this.redis.publish(this.keys.userChannel(userId), raw)),
    );
    const reached = receivers.filter((n) => n > 0).length;
    this.metrics.busMessages.inc({ direction: 'out' }, userIds.length);
    return reached;
  }

  async publishBroadcast(message: BroadcastMessage): Promise<void> {
    await this.redis.publish(this.keys.broadcastChannel(), JSON.stringify(message));
    this.metrics.busMessages.inc({ direction: 'out' });
  }

  async subscribeUser(userId: string): Promise<void> {
    const existing = this.userSubscriptions.get(userId);
    if (existing) {
      existing.connections += 1;
      await existing.active;
      return;
    }
    const channel = this.keys.userChannel(userId);
    if (this.unsubscribing.delete(channel)) {
      // Its UNSUBSCRIBE was not sent yet: the channel is still subscribed.
      this.userSubscriptions.set(userId, { connections: 1, active: SUBSCRIBED });
      return;
    }
    const entry: UserSubscription = { connections: 1, active: this.subscribes.add(channel) };
    this.userSubscriptions.set(userId, entry);
    try {
      await entry.active;
      entry.active = SUBSCRIBED;
    } catch (error) {
      if (this.userSubscriptions.get(userId) === entry) this.userSubscriptions.delete(userId);
      // The SUBSCRIBE may still go through later: an UNSUBSCRIBE queued behind it undoes it.
      this.subscriber.unsubscribe(channel).catch(() => undefined);
      throw error;
    }
  }

  async unsubscribeUser(userId: string): Promise<void> {
    const entry = this.userSubscriptions.get(userId);
    if (!entry) return;
    entry.connections -= 1;
    if (entry.connections > 0) return;
    this.userSubscriptions.delete(userId);
    this.unsubscribing.add(this.keys.userChannel(userId));
    if (this.unsubscribeArmed) return;
    this.unsubscribeArmed = true;
    setImmediate(() => this.flushUnsubscribes());
  }

  /**
   * One UNSUBSCRIBE for the channels left this turn. Same connection as the subscribes: Redis sees them in
   * order, so a subscribe sent after this one wins. Not awaited by the closing connections: a failure leaves
   * a channel subscribed whose messages find no connection here and are ignored.
   */
  private flushUnsubscribes(): void {
    this.unsubscribeArmed = false;
    if (this.unsubscribing.size === 0 || this.closing) return;
    const channels = [...this.unsubscribing];
    this.unsubscribing.clear();
    this.subscriber.unsubscribe(...channels).catch((error: Error) => {
      this.logger.warn({ message: 'UNSUBSCRIBE failed', channels: channels.length, error: error.message });
    });
  }

  private dispatch(channel: string, raw: string): void {
    this.metrics.busMessages.inc({ direction: 'in' });
    if (!this.handlers) return;
    let message: BusMessage;
    try {
      message = JSON.parse(raw) as BusMessage;
    } catch {
      this.logger.error({ message: 'unparseable bus message', channel });
      return;
    }
    // From the subscriber's reconnect until its return is confirmed, a notification is left to the catch-up
    // the return starts (BusCatchUp): it is in the record already, and the catch-up sends what the bus missed
    // and this together in seq order, where sent now it would go ahead of older ones the bus missed.
    if (!this.receiving && (message.kind === 'deliver' || message.kind === 'broadcast')) return;
    const userId = this.keys.userFromChannel(channel);
    if (userId !== null && message.kind === 'deliver') this.handlers.deliver(userId, message);
    else if (userId !== null && message.kind === 'alive') this.handlers.alive(userId, message);
    else if (userId !== null && message.kind === 'disconnect') this.handlers.disconnect(userId, message);
    else if (channel === this.keys.broadcastChannel() && message.kind === 'broadcast') this.handlers.broadcast(message);
    else this.logger.warn({ message: 'bus message on unexpected channel', channel, kind: message.kind });
  }
}
