import { DataSource } from 'typeorm';
import { InitialSchema1764090000000 } from './migrations/1764090000000-InitialSchema';
import { AdminIndexes1764100000000 } from './migrations/1764100000000-AdminIndexes';
import { ReplayChecks1764110000000 } from './migrations/1764110000000-ReplayChecks';
import { SendChecks1764120000000 } from './migrations/1764120000000-SendChecks';

export const MIGRATIONS = [
  InitialSchema1764090000000,
  AdminIndexes1764100000000,
  ReplayChecks1764110000000,
  SendChecks1764120000000,
];

/** Key of the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK_KEY = 0x6865_7261; // "hera"

export function createDataSource(databaseUrl: string, applicationName = 'herald'): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    applicationName,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'herald_migrations',
    migrationsTransactionMode: 'each',
    logging: false,
    extra: {
      max: 20,
      connectionTimeoutMillis: 3000,
      // A stuck statement must not hold a publish forever: the caller gets a 503. Generous,
      // because an everyone-publish writes one row per known user in one statement.
      statement_timeout: 30_000,
      // And a PostgreSQL that stops answering (partition) must not either.
      query_timeout: 35_000,
      keepAlive: true,
      idleTimeoutMillis: 30_000,
    },
  });
}

/**
 * Runs pending migrations under a PostgreSQL advisory lock, so any number of
 * replicas can start at once: the first one migrates, the others wait for it
 * and then find nothing to do.
 */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return applied.map((m) => m.name);
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await runner.release();
  }
}
