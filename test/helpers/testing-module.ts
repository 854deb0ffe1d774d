import 'reflect-metadata';
import type { ModuleMetadata, Type } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { foundation } from '../../apps/herald/src/app.module';
import { createLogger, enableLevelsFrom } from '../../apps/herald/src/common/logging';
import type { HeraldConfig } from '../../apps/herald/src/config/config.schema';
import { MetricsService } from '../../apps/herald/src/metrics/metrics.service';
import { AppData } from './app-data';
import { parseMetrics } from './metrics';

/**
 * Feature modules of Herald in a Nest testing module, on the app's own foundation (config, metrics,
 * PostgreSQL migrated, Redis, BullMQ: AppModule's `foundation`), against a database and a Redis key prefix
 * of the test file's own. No HTTP server: a test calls the services and repositories it gets from `get`.
 * Nothing is replaced by a stand-in: to see a service fail, stop what it stands on (see `dataSource`).
 */
export class HeraldTestingModule {
  private constructor(
    readonly config: HeraldConfig,
    private readonly data: AppData,
    readonly module: TestingModule,
  ) {}

  /** `env` goes on top of the test replicas' environment (`AppData.config`). */
  static async create(
    label: string,
    features: NonNullable<ModuleMetadata['imports']>,
    env: Record<string, string> = {},
  ): Promise<HeraldTestingModule> {
    const data = await AppData.create(label, `${label}-module`);
    let module: TestingModule | undefined;
    try {
      const config = data.config(env);
      const base = foundation(config);
      enableLevelsFrom(config);
      // The app's logger (JSON lines with the replica id), to the file's log, which the run's end scans too.
      module = await Test.createTestingModule({ imports: [...base.imports, ...features], providers: base.providers })
        .setLogger(createLogger(config, true, data.logStreams))
        .compile();
      // Lifecycle hooks as in the app: onModuleInit and onApplicationBootstrap (workers, subscriptions).
      await module.init();
      return new HeraldTestingModule(config, data, module);
    } catch (error) {
      await module?.close().catch(() => undefined);
      await data.release();
      throw error;
    }
  }

  get id(): string {
    return this.data.id;
  }

  get<T>(type: Type<T> | symbol | string): T {
    return this.module.get<T>(type, { strict: false });
  }

  /** The app's main pool, for reading what a service wrote. */
  get dataSource(): DataSource {
    return this.get(DataSource);
  }

  /** The metrics as /metrics would serve them, parsed: `name{label="value"}` to value. */
  async metrics(): Promise<Map<string, number>> {
    return parseMetrics(await this.get(MetricsService).registry.metrics());
  }

  /** Runs the shutdown hooks (workers, pools and clients closed), then drops the file's data. */
  async close(): Promise<void> {
    try {
      await this.module.close();
    } finally {
      await this.data.release();
    }
  }
}
