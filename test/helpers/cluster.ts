import { createTestDatabase, TestDatabase } from './database';
import { DeliveryRow, deliveryOf, waitParked, waitRecorded } from './deliveries';
import { deleteRedisPrefix, testRedisPrefix } from './redis';
import { Replica } from './replica';

/** Two (or more) replicas sharing one private database and Redis prefix. */
export class TestCluster {
  private constructor(
    readonly db: TestDatabase,
    readonly redisPrefix: string,
    readonly replicas: Replica[],
  ) {}

  static async start(label: string, count = 2, env: Record<string, string> = {}): Promise<TestCluster> {
    const db = await createTestDatabase(label);
    const redisPrefix = testRedisPrefix(label);
    const replicas: Replica[] = [];
    for (let i = 1; i <= count; i++) {
      replicas.push(await Replica.create(`${label}-r${i}`, { databaseUrl: db.url, redisPrefix, ...env }));
    }
    const cluster = new TestCluster(db, redisPrefix, replicas);
    // Started together: migrations must be safe when replicas race for them.
    await Promise.all(replicas.map((r) => r.start()));
    return cluster;
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop().catch(() => undefined)));
    await this.db.drop();
    await deleteRedisPrefix(this.redisPrefix);
  }

  deliveryOf(notificationId: string, userId: string): Promise<DeliveryRow | undefined> {
    return deliveryOf(this.db, notificationId, userId);
  }

  /** See `waitRecorded` in deliveries.ts. */
  waitRecorded(notificationId: string, userId: string): Promise<DeliveryRow> {
    return waitRecorded(this.db, notificationId, userId);
  }

  /** See `waitParked` in deliveries.ts. */
  waitParked(notificationId: string, userId: string, timeoutMs = 10_000): Promise<void> {
    return waitParked(this.db, notificationId, userId, timeoutMs);
  }
}
