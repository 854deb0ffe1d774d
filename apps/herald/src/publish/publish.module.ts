import { Logger, Module } from '@nestjs/common';
import type { RedisClient } from '../redis/redis-client';
import { AuthModule } from '../auth/auth.module';
import { DeliveryModule } from '../delivery/delivery.module';
import { NotificationsModule } from '../record/notifications.module';
import { PublishController } from './publish.controller';
import { PublishService } from './publish.service';
import { PublisherLimiter } from './publisher-limiter';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';

@Module({
  imports: [AuthModule, DeliveryModule, NotificationsModule],
  controllers: [PublishController],
  providers: [
    PublishService,
    {
      provide: PublisherLimiter,
      inject: [REDIS, RedisKeys, HERALD_CONFIG, MetricsService],
      useFactory: (redis: RedisClient, keys: RedisKeys, config: HeraldConfig, metrics: MetricsService) =>
        new PublisherLimiter(redis, keys, config, {
          rateLimited: metrics.publisherRateLimited,
          failOpen: metrics.publisherLimiterFailOpen,
          logger: new Logger(PublisherLimiter.name),
        }),
    },
  ],
  exports: [PublishService],
})
export class PublishModule {}
