import { loadConfig } from '../config/config.schema';
import { createDataSource, runMigrations } from './data-source';

/** `npm run migrate`: applies pending migrations and exits. */
async function main(): Promise<void> {
  const config = loadConfig();
  const dataSource = createDataSource(config.databaseUrl, 'herald-migrate');
  await dataSource.initialize();
  try {
    const applied = await runMigrations(dataSource);
    process.stdout.write(
      JSON.stringify({ level: 'log', message: 'migrations applied', applied, count: applied.length }) + '\n',
    );
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
