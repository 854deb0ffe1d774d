import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { LifecycleModule } from './common/lifecycle.module';
import { ConfigModule } from './config/config.module';
import { HeraldConfig } from './config/config.schema';
import { AdminModule } from './admin/admin.module';
import { DatabaseModule } from './database/database.module';
import { DemoModule } from './demo/demo.module';
import { GatewayModule } from './gateway/gateway.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { PublishModule } from './publish/publish.module';
import { RedisModule } from './redis/redis.module';
import { RedisKeys } from './redis/redis-keys';

@Module({})
export class AppModule {
  static forRoot(config: HeraldConfig): DynamicModule {
    const url = new URL(config.redisUrl);
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LifecycleModule,
        MetricsModule,
        DatabaseModule,
        RedisModule,
        BullModule.forRoot({
          prefix: new RedisKeys(config.redisPrefix).bullPrefix(),
          connection: {
            host: url.hostname,
            port: Number(url.port || 6379),
            ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
            ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
            ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
            ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
            maxRetriesPerRequest: null,
          },
        }),
        HealthModule,
        PublishModule,
        GatewayModule,
        DemoModule,
        AdminModule,
      ],
    };
  }
}
