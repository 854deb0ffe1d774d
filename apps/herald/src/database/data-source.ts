import type { LoggerService } from '@nestjs/common';
import { DataSource, Logger as TypeOrmLogger } from 'typeorm';
import { InitialSchema1764090000000 } from './migrations/1764090000000-InitialSchema';
import { AdminIndexes1764100000000 } from './migrations/1764100000000-AdminIndexes';
import { ReplayChecks1764110000000 } from './migrations/1764110000000-ReplayChecks';
import { SendChecks1764120000000 } from './migrations/1764120000000-SendChecks';
import { BroadcastStreams1764130000000 } from './migrations/1764130000000-BroadcastStreams';
import { ChecksOnReplicas1764140000000 } from './migrations/1764140000000-ChecksOnReplicas';
import { ExpireOpenDeliveries1764150000000 } from './migrations/1764150000000-ExpireOpenDeliveries';
import { RetentionPartitions1764160000000 } from './migrations/1764160000000-RetentionPartitions';
import { Inbox1764170000000 } from './migrations/1764170000000-Inbox';
import { Webhooks1764180000000 } from './migrations/1764180000000-Webhooks';

export const MIGRATIONS = [
  InitialSchema1764090000000,
  AdminIndexes1764100000000,
  ReplayChecks1764110000000,
  SendChecks1764120000000,
  BroadcastStreams1764130000000,
  ChecksOnReplicas1764140000000,
  ExpireOpenDeliveries1764150000000,
  RetentionPartitions1764160000000,
  Inbox1764170000000,
  Webhooks1764180000000,
];

/** This build's schema: the name of its last migration. Its presence beats carry it (the upgrade fence reads it). */
export const SCHEMA_VERSION = new MIGRATIONS[MIGRATIONS.length - 1]!().name;

/**
 * The oldest schema this build can share the database with (the upgrade fence refuses replicas below it,
 * and those whose beat carries no schema at all). It moves only with a migration that replicas of the
 * previous release cannot live beside; a release whose migrations they can live beside keeps it, so its
 * upgrade is a rolling restart.
 */
export const SHARED_SCHEMA_FLOOR = new RetentionPartitions1764160000000().name;

/** A migration name's timestamp (its trailing 13 digits), or NaN for anything else. */
export function schemaTimestamp(schema: string): number {
  const match = /(\d{13})$/.exec(schema);
  return match ? Number(match[1]) : Number.NaN;
}

/** Key of the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK_KEY = 0x6865_7261; // "hera"

/**
 * Session settings of the ack pool: its commits are asynchronous (a commit lost in a PostgreSQL crash is an
 * ack or sent-mark to repeat, never a lost notification), and its statements are planned once per connection
 * (their array parameters made PostgreSQL plan them anew on every run). Every statement of this pool finds
 * its rows by key, so sequential scans are off: a plan made once while the table was still small would
 * otherwise scan it for good. See docs/adr/0002-ack-pool-and-ack-through.md.
 */
export const ACK_SESSION_OPTIONS =
  '-c synchronous_commit=off -c plan_cache_mode=force_generic_plan -c enable_seqscan=off';

export interface PoolOptions {
  /** Most connections (default 20). */
  max?: number;
  /** PostgreSQL session settings sent at connect, as `-c name=value ...`. */
  sessionOptions?: string;
}

/**
 * TypeORM's logger: what migrations write at level `log` (the conversion's progress, ConversionProgress) goes
 * to `progress`; everything else stays quiet, as `logging: false` keeps it.
 */
function progressLogger(progress?: Pick<LoggerService, 'log'>): TypeOrmLogger {
  const quiet = (): void => undefined;
  return {
    logQuery: quiet,
    logQueryError: quiet,
    logQuerySlow: quiet,
    logSchemaBuild: quiet,
    logMigration: quiet,
    log: (level, message) => {
      if (level === 'log') progress?.log(message);
    },
  };
}

/**
 * `options.migrations`: all of them unless told (the upgrade's tests and bench stop at an earlier schema);
 * `options.progress`: where the conversion's progress lines go (nowhere unless told).
 */
export function createDataSource(
  databaseUrl: string,
  applicationName = 'herald',
  pool: PoolOptions = {},
  options: { migrations?: (typeof MIGRATIONS)[number][]; progress?: Pick<LoggerService, 'log'> } = {},
): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    applicationName,
    synchronize: false,
    migrationsRun: false,
    migrations: options.migrations ?? MIGRATIONS,
    migrationsTableName: 'herald_migrations',
    migrationsTransactionMode: 'each',
    logging: false,
    logger: progressLogger(options.progress),
    extra: {
      max: pool.max ?? 20,
      ...(pool.sessionOptions !== undefined ? { options: pool.sessionOptions } : {}),
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
