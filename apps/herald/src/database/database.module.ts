import { Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { REDIS } from '../redis/redis.module';
import type { RedisClient } from '../redis/redis-client';
import { ACK_SESSION_OPTIONS, createDataSource } from './data-source';
import { migrateBehindFence } from './schema-upgrade';

/** The small pool that writes acks and sent-marks, with asynchronous commits (see ACK_SESSION_OPTIONS). */
export const ACK_DATA_SOURCE = Symbol('ACK_DATA_SOURCE');

@Injectable()
class DataSourceCloser implements OnApplicationShutdown {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(ACK_DATA_SOURCE) private readonly ackSource: DataSource,
  ) {}
  async onApplicationShutdown(): Promise<void> {
    for (const source of [this.ackSource, this.dataSource]) if (source.isInitialized) await source.destroy();
  }
}

@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      // Redis first: the upgrade fence reads presence before anything is migrated.
      inject: [HERALD_CONFIG, REDIS],
      useFactory: async (config: HeraldConfig, redis: RedisClient): Promise<DataSource> => {
        const logger = new Logger('Database');
        const dataSource = createDataSource(
          config.databaseUrl,
          `herald:${config.replicaId}`,
          {},
          { progress: new Logger('Conversion') },
        );
        await dataSource.initialize();
        try {
          const applied = await migrateBehindFence(dataSource, redis, config);
          if (applied.length > 0) logger.log({ message: 'migrations applied', applied });
        } catch (error) {
          await dataSource.destroy();
          throw error;
        }
        return dataSource;
      },
    },
    {
      provide: ACK_DATA_SOURCE,
      // After the main one: the schema is migrated before anything writes through this pool.
      inject: [HERALD_CONFIG, DataSource],
      useFactory: async (config: HeraldConfig): Promise<DataSource> => {
        const dataSource = createDataSource(config.databaseUrl, `herald:${config.replicaId}:acks`, {
          max: config.ackPoolSize,
          sessionOptions: ACK_SESSION_OPTIONS,
        });
        await dataSource.initialize();
        return dataSource;
      },
    },
    DataSourceCloser,
  ],
  exports: [DataSource, ACK_DATA_SOURCE],
})
export class DatabaseModule {}
