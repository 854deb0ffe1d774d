import { existsSync, readFileSync } from 'node:fs';
import type { LogStreams } from '../../apps/herald/src/common/logging';
import { parseConfig, type HeraldConfig } from '../../apps/herald/src/config/config.schema';
import { appLog, type AppLog } from './app-log';
import { createTestDatabase, type TestDatabase } from './database';
import { deleteRedisPrefix, testRedisPrefix } from './redis';
import { replicaEnv } from './replica';

export interface AppDataOptions {
  db?: TestDatabase;
  redisPrefix?: string;
  quiet?: boolean;
}

/**
 * What an app run inside the Jest process owns for its test file: its log file, its database and its Redis
 * key prefix. `release` gives the database and prefix back, on a failed start and at stop; the log file
 * stays for the end-of-run scan.
 */
export class AppData {
  private constructor(
    readonly id: string,
    readonly db: TestDatabase,
    readonly redisPrefix: string,
    private readonly logged: AppLog,
  ) {}

  /**
   * `on`: an existing database and Redis prefix (a converted one), which `release` then drops as its own;
   * `quiet`: the app's lines go to its log file only, not to the run's output.
   */
  static async create(label: string, id: string, on: AppDataOptions = {}): Promise<AppData> {
    const db = on.db ?? (await createTestDatabase(label));
    return new AppData(id, db, on.redisPrefix ?? testRedisPrefix(label), appLog(label, !on.quiet));
  }

  /**
   * The app's config: the test replicas' environment (replicaEnv: fast timings, test keys) on this data,
   * warnings and errors only unless `env` says otherwise, then `env`, then `fixed` (a port, say).
   */
  config(env: Record<string, string>, fixed: Record<string, string> = {}): HeraldConfig {
    return parseConfig({
      ...replicaEnv({ databaseUrl: this.db.url, redisPrefix: this.redisPrefix, LOG_LEVEL: 'warn', ...env }),
      ...fixed,
      REPLICA_ID: this.id,
    });
  }

  /** Where the app's logger writes: its log file (and the run's output unless quiet). */
  get logStreams(): LogStreams {
    return this.logged.streams;
  }

  /** What the app has logged so far (JSON lines); empty before its first line. */
  log(): string {
    return existsSync(this.logged.file) ? readFileSync(this.logged.file, 'utf8') : '';
  }

  async release(): Promise<void> {
    await this.db.drop();
    await deleteRedisPrefix(this.redisPrefix);
  }
}
