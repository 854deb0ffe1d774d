import { copyAppLog, stopCopyingAppLog } from './app-log';
import { createTestDatabase, type TestDatabase } from './database';
import { deleteRedisPrefix, testRedisPrefix } from './redis';

/**
 * What an app run inside the Jest process owns for its test file: a copy of its log lines (by its replica
 * id), its database and its Redis key prefix. `release` gives all three back, on a failed start and at stop.
 */
export class AppData {
  private constructor(
    readonly id: string,
    readonly db: TestDatabase,
    readonly redisPrefix: string,
  ) {}

  /** `on`: an existing database and Redis prefix (a converted one), which `release` then drops as its own. */
  static async create(
    label: string,
    id: string,
    on: { db?: TestDatabase; redisPrefix?: string } = {},
  ): Promise<AppData> {
    const db = on.db ?? (await createTestDatabase(label));
    copyAppLog(id, label);
    return new AppData(id, db, on.redisPrefix ?? testRedisPrefix(label));
  }

  async release(): Promise<void> {
    stopCopyingAppLog(this.id);
    await this.db.drop();
    await deleteRedisPrefix(this.redisPrefix);
  }
}
