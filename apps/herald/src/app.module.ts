import { InboxModule } from './inbox/inbox.module';
import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module, ModuleMetadata, OnApplicationShutdown } from '@nestjs/common';
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
import { WebhooksModule } from './webhooks/webhooks.module';
import { RedisKeys } from './redis/redis-keys';
import { bullConnection } from './redis/redis-client';

/** BullMQ's cluster client is passed to it made (it takes no cluster options): closed here at shutdown. */
class BullClusterCloser implements OnApplicationShutdown {
  constructor(private readonly cluster: Cluster) {}
  async onApplicationShutdown(): Promise<void> {
    await this.cluster.quit().catch(() => this.cluster.disconnect());
  }
}

/**
 * What every feature module stands on: config, request context, drain state, metrics, PostgreSQL (migrated),
 * Redis and BullMQ's connection. AppModule adds the features; the in-process tests build a testing module
 * of these and the features they test (test/helpers/testing-module.ts).
 */
export function foundation(config: HeraldConfig): Required<Pick<ModuleMetadata, 'imports' | 'providers'>> {
  const connection = bullConnection(config);
  return {
    imports: [
      RequestContextModule,
      ConfigModule.forRoot(config),
      LifecycleModule,
      MetricsModule,
      DatabaseModule,
      RedisModule,
      BullModule.forRoot({ prefix: RedisKeys.of(config).bullPrefix(), connection }),
    ],
    providers:
      connection instanceof Cluster
        ? [{ provide: BullClusterCloser, useFactory: () => new BullClusterCloser(connection) }]
        : [],
  };
}

@Module({})
export class AppModule {
  static forRoot(config: HeraldConfig): DynamicModule {
    const { imports, providers } = foundation(config);
    return {
      module: AppModule,
      providers,
      imports: [
        ...imports,
        HealthModule,
        PublishModule,
        GatewayModule,
        InboxModule,
        DemoModule,
        AdminModule,
        RetentionModule,
        WebhooksModule,
      ],
    };
  }
}
