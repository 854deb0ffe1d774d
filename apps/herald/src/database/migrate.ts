import { Logger } from '@nestjs/common';
import { createLogger } from '../common/logging';
import { loadConfig } from '../config/config.schema';
import { createRedis, whenReady } from '../redis/redis-client';
import { createDataSource } from './data-source';
import { migrateBehindFence } from './schema-upgrade';
import { UpgradeFenceError } from './upgrade-fence';

/**
 * `npm run migrate`: applies pending migrations behind the upgrade fence and exits. It needs Redis as a
 * replica does: the fence reads presence. Logs (the conversion's progress among them) as a replica logs.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  Logger.overrideLogger(createLogger(config, false));
  const redis = createRedis(config, 'migrate');
  try {
    await whenReady(redis, config.redis);
    const dataSource = createDataSource(
      config.databaseUrl,
      'herald-migrate',
      {},
      { progress: new Logger('Conversion') },
    );
    await dataSource.initialize();
    try {
      const applied = await migrateBehindFence(dataSource, redis, config);
      new Logger('Migrate').log({ message: 'migrations applied', applied, count: applied.length });
    } finally {
      await dataSource.destroy();
    }
  } finally {
    redis.disconnect();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`herald migrate: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof UpgradeFenceError ? 75 : 1);
});
