import { Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { createRedis, REDIS, RedisClient, whenReady } from './redis-client';
import { RedisKeys } from './redis-keys';
import { RedisMetrics } from './redis-metrics';

export { REDIS };

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {}
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
      useFactory: (config: HeraldConfig): Promise<RedisClient> =>
        whenReady(createRedis(config, 'commands'), config.redis),
    },
    {
      provide: RedisKeys,
      inject: [HERALD_CONFIG],
      useFactory: (config: HeraldConfig) => RedisKeys.of(config),
    },
    RedisCloser,
    RedisMetrics,
  ],
  exports: [REDIS, RedisKeys],
})
export class RedisModule {}
