import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module, OnApplicationShutdown, Provider } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { RequestContextModule } from './common/logging';
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
import { RetentionModule } from './retention/retention.module';
import { RedisKeys } from './redis/redis-keys';
import { bullConnection } from './redis/redis-client';

/** BullMQ's cluster client is passed to it made (it takes no cluster options): closed here at shutdown. */
class BullClusterCloser implements OnApplicationShutdown {
  constructor(private readonly cluster: Cluster) {}
  async onApplicationShutdown(): Promise<void> {
    await this.cluster.quit().catch(() => this.cluster.disconnect());
  }
}

@Module({})
export class AppModule {
  static forRoot(config: HeraldConfig): DynamicModule {
    const connection = bullConnection(config);
    const providers: Provider[] =
      connection instanceof Cluster
        ? [{ provide: BullClusterCloser, useFactory: () => new BullClusterCloser(connection) }]
        : [];
    return {
      module: AppModule,
      providers,
      imports: [
        RequestContextModule,
        ConfigModule.forRoot(config),
        LifecycleModule,
        MetricsModule,
        DatabaseModule,
        RedisModule,
        BullModule.forRoot({
          prefix: RedisKeys.of(config).bullPrefix(),
          connection,
        }),
        HealthModule,
        PublishModule,
        GatewayModule,
        DemoModule,
        AdminModule,
        RetentionModule,
      ],
    };
  }
}
