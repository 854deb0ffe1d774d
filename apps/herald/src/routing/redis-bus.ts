import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { createRedis, REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';
import { withTimeout } from '../common/timeout';
import { BroadcastMessage, Bus, BusHandlers, BusMessage, UserMessage } from './bus';

const SUBSCRIBE_TIMEOUT_MS = 5000;
/** What a settled subscription waits for: one shared promise, not one kept per subscribed user. */
const SUBSCRIBED: Promise<unknown> = Promise.resolve();

/** The Bus on Redis pub/sub: one channel per user, one for broadcasts. */
@Injectable()
export class RedisBus extends Bus implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisBus.name);
  private readonly subscriber: Redis;
  private handlers: BusHandlers | null = null;
  /** Local connections per subscribed user, and the subscription they all wait for. */
  private readonly userSubscriptions = new Map<string, { connections: number; active: Promise<unknown> }>();

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
    await this.subscriber.subscribe(this.keys.broadcastChannel());
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
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
    // Bounded: a stalled Redis fails the connection setup (1013, the client retries) instead of hanging it.
    const entry = {
      connections: 1,
      active: withTimeout(this.subscriber.subscribe(channel), SUBSCRIBE_TIMEOUT_MS, 'SUBSCRIBE'),
    };
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
    // Same connection as the subscribe: Redis sees them in order, so a new subscribe after this one wins.
    await this.subscriber.unsubscribe(this.keys.userChannel(userId));
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
    const userId = this.keys.userFromChannel(channel);
    if (userId !== null && message.kind === 'deliver') this.handlers.deliver(userId, message);
    else if (userId !== null && message.kind === 'alive') this.handlers.alive(userId, message);
    else if (userId !== null && message.kind === 'disconnect') this.handlers.disconnect(userId, message);
    else if (channel === this.keys.broadcastChannel() && message.kind === 'broadcast') this.handlers.broadcast(message);
    else this.logger.warn({ message: 'bus message on unexpected channel', channel, kind: message.kind });
  }
}
