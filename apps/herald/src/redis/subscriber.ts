import { Cluster, Redis } from 'ioredis';
import type { HeraldConfig } from '../config/config.schema';
import type { MetricsService } from '../metrics/metrics.service';
import { createRedis } from './redis-client';

/**
 * The receiving side of pub/sub. On one Redis: SUBSCRIBE on one connection, which ioredis subscribes again
 * when it reconnects. On a cluster: sharded pub/sub (SSUBSCRIBE), through ioredis' sharded subscribers, one
 * connection per master that holds a subscribed channel, subscribed again on the channel's new master after a
 * failover or a moved slot (ADR 0019).
 *
 * Neither tells when a subscription is active again, so `down` only says that messages may have been
 * missed, and `up` that the subscriptions may be back: whoever needs to know confirms it with a message of
 * its own (RedisBus.back).
 */
export class Subscriber {
  private readonly client: Redis | Cluster;
  private readonly channels = new Set<string>();
  private closed = false;

  constructor(
    config: HeraldConfig,
    private readonly name: string,
    private readonly metrics: MetricsService,
    handlers: { message(channel: string, raw: string): void; down?(): void; up?(): void },
  ) {
    this.client = createRedis(config, name, 'subscriber');
    metrics.redisSubscriptions.set(name, () => this.channels.size);
    const down = () => {
      if (!this.closed) handlers.down?.();
    };
    const up = () => {
      if (!this.closed) handlers.up?.();
    };
    if (this.client instanceof Cluster) {
      this.client.on('smessage', (channel: string, raw: string) => handlers.message(channel, raw));
      // A shard's subscriber connection ended, failed, or was told its channels moved (Redis sends an
      // unsolicited SUNSUBSCRIBE, which ioredis reports as an error of that node).
      for (const event of ['-node', 'nodeError', '-subscriber', 'close']) this.client.on(event, down);
      for (const event of ['subscribersReady', 'ready']) this.client.on(event, up);
    } else {
      this.client.on('message', (channel: string, raw: string) => handlers.message(channel, raw));
      for (const event of ['close', 'end']) this.client.on(event, down);
      this.client.on('ready', up);
    }
  }

  /** Subscribes to `channels` (on a cluster, each on its shard); resolves once Redis confirmed every one. */
  async subscribe(channels: string[]): Promise<void> {
    const client = this.client;
    if (client instanceof Cluster) await Promise.all(channels.map((channel) => client.ssubscribe(channel)));
    else await client.subscribe(...channels);
    for (const channel of channels) this.channels.add(channel);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.metrics.redisSubscriptions.delete(this.name);
    await this.client.quit().catch(() => this.client.disconnect());
    this.client.removeAllListeners();
  }
}
