import { Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { RedisKeys } from './redis-keys';

/** The command connection (presence, publishing). Subscribers make their own. */
export const REDIS = Symbol('REDIS');

const logger = new Logger('Redis');

export function createRedis(config: HeraldConfig, name: string): Redis {
  // Pub/sub connections ('subscriber', 'admin-subscriber') queue their SUBSCRIBE until connected.
  const subscriber = name.endsWith('subscriber');
  const redis = new Redis(config.redisUrl, {
    connectionName: `herald:${config.replicaId}:${name}`,
    // Fail fast while Redis is down instead of queueing commands without bound:
    // PostgreSQL stays the record and the sweep catches up once Redis is back.
    enableOfflineQueue: subscriber,
    maxRetriesPerRequest: 1,
    // A stalled Redis must not stall a publish (it is already durable) or a connection setup.
    ...(subscriber ? {} : { commandTimeout: 2000 }),
    // Commands issued in the same tick (publishes and acks of many clients) go out in one write.
    enableAutoPipelining: !subscriber,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: false,
  });
  let down = false;
  redis.on('error', (error: Error) => {
    if (!down) logger.warn({ message: 'Redis connection lost; retrying', connection: name, error: error.message });
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.log({ message: 'Redis connection back', connection: name });
    down = false;
  });
  return redis;
}

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}
  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [HERALD_CONFIG],
      useFactory: async (config: HeraldConfig): Promise<Redis> => {
        const redis = createRedis(config, 'commands');
        await new Promise<void>((resolve, reject) => {
          redis.once('ready', () => resolve());
          redis.once('error', (error: Error) =>
            reject(new Error(`Redis at ${config.redisUrl} is not reachable: ${error.message}`)),
          );
        });
        return redis;
      },
    },
    {
      provide: RedisKeys,
      inject: [HERALD_CONFIG],
      useFactory: (config: HeraldConfig) => new RedisKeys(config.redisPrefix),
    },
    RedisCloser,
  ],
  exports: [REDIS, RedisKeys],
})
export class RedisModule {}
