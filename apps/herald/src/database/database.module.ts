import { Global, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { createDataSource, runMigrations } from './data-source';

@Injectable()
class DataSourceCloser implements OnApplicationShutdown {
  constructor(private readonly dataSource: DataSource) {}
  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      inject: [HERALD_CONFIG],
      useFactory: async (config: HeraldConfig): Promise<DataSource> => {
        const logger = new Logger('Database');
        const dataSource = createDataSource(config.databaseUrl, `herald:${config.replicaId}`);
        await dataSource.initialize();
        const applied = await runMigrations(dataSource);
        if (applied.length > 0) logger.log({ message: 'migrations applied', applied });
        return dataSource;
      },
    },
    DataSourceCloser,
  ],
  exports: [DataSource],
})
export class DatabaseModule {}
