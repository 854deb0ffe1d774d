import { Logger } from '@nestjs/common';
import { createLogger } from '../common/herald-logger';
import { loadConfig } from '../config/config.schema';
import { createDataSource, runMigrations } from './data-source';

/** `npm run migrate`: applies pending migrations and exits. Logs (the conversion's progress among them) as a replica logs. */
async function main(): Promise<void> {
  const config = loadConfig();
  Logger.overrideLogger(createLogger(config));
  const dataSource = createDataSource(config.databaseUrl, 'herald-migrate');
  await dataSource.initialize();
  try {
    const applied = await runMigrations(dataSource);
    new Logger('Migrate').log({ message: 'migrations applied', applied, count: applied.length });
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
