import { createTestDatabase, TestDatabase } from './database';
import { deleteRedisPrefix, testRedisPrefix } from './redis';
import { Replica } from './replica';
import { waitFor } from './wait';

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

  async deliveryOf(notificationId: string, userId: string): Promise<{ status: string; attempts: number } | undefined> {
    const rows = await this.db.query<{ status: string; attempts: number }>(
      'SELECT status, attempts FROM deliveries WHERE notification_id = $1 AND user_id = $2',
      [notificationId, userId],
    );
    return rows[0];
  }

  /**
   * Waits until a first send over a WebSocket is recorded: it leaves before it is (SEND_RECORD_DELAY_MS
   * later, or with its ack). Answers the delivery's status and attempts then.
   */
  async waitRecorded(notificationId: string, userId: string): Promise<{ status: string; attempts: number }> {
    return waitFor(`the send of ${notificationId} to ${userId} to be recorded`, async () => {
      const delivery = await this.deliveryOf(notificationId, userId);
      return delivery && delivery.status !== 'pending' ? delivery : undefined;
    });
  }

  /** Waits until the delivery is parked: open, but no longer timed (its user is offline). */
  async waitParked(notificationId: string, userId: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(
      `delivery ${notificationId} to ${userId} to be parked`,
      async () =>
        (
          await this.db.query<{ parked: boolean }>(
            `SELECT next_attempt_at IS NULL AND status IN ('pending', 'sent') AS parked
               FROM deliveries WHERE notification_id = $1 AND user_id = $2`,
            [notificationId, userId],
          )
        )[0]?.parked,
      timeoutMs,
    );
  }
}
