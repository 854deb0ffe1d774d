import type { QueryRunner } from 'typeorm';
import { createDataSource, MIGRATIONS } from '../../apps/herald/src/database/data-source';
import { ChecksOnReplicas1764140000000 } from '../../apps/herald/src/database/migrations/1764140000000-ChecksOnReplicas';
import { ExpireOpenDeliveries1764150000000 } from '../../apps/herald/src/database/migrations/1764150000000-ExpireOpenDeliveries';
import { createTestDatabase, TestDatabase } from '../helpers/database';
import { insertOldNotification, insertSendCheck, migrateThrough } from '../helpers/old-record';

const THROUGH_STREAMS = MIGRATIONS.slice(
  0,
  MIGRATIONS.findIndex((m) => m.name === 'BroadcastStreams1764130000000') + 1,
);

/** Runs `run` with a query runner of the database, released afterwards. */
async function withQueryRunner<T>(db: TestDatabase, run: (q: QueryRunner) => Promise<T>): Promise<T> {
  const dataSource = createDataSource(db.url, 'herald-test-conversion', { max: 1 });
  await dataSource.initialize();
  const q = dataSource.createQueryRunner();
  try {
    await q.connect();
    return await run(q);
  } finally {
    await q.release();
    await dataSource.destroy();
  }
}

async function deliveryStates(db: TestDatabase): Promise<Record<string, number>> {
  const rows = await db.query<{ state: string; n: number }>(
    `SELECT status || '/' || attempts AS state, count(*)::int AS n FROM deliveries GROUP BY 1 ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/**
 * The conversion migrations outside a transaction (ChecksOnReplicas, ExpireOpenDeliveries) commit batch by
 * batch: interrupted, they keep what they committed and finish the rest when run again, never twice.
 */
describe('Conversion migrations', () => {
  let db: TestDatabase;
  const users = Array.from({ length: 450 }, (_, i) => `u${String(i).padStart(3, '0')}`);

  beforeAll(async () => {
    db = await createTestDatabase('conversion');
    await migrateThrough(db.url);
    // 450 send records of one broadcast, one pending user each: three batches of 200.
    const { id } = await insertOldNotification(db, {
      topic: 'news',
      deliveries: users.map((userId) => ({ userId, status: 'pending' as const })),
    });
    for (const user of users) await insertSendCheck(db, id, [user], new Date(Date.now() - 5000), new Date());
    await insertOldNotification(db, {
      deliveries: [{ userId: 'late', status: 'sent', nextAttemptAt: new Date() }],
      ttlSeconds: 60,
      ageSeconds: 120,
    });
    expect(await migrateThrough(db.url, THROUGH_STREAMS)).toEqual(['BroadcastStreams1764130000000']);
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('settles send checks interrupted after a batch once, finishing the rest when run again', async () => {
    let batches = 0;
    const failure = await withQueryRunner(db, (q) => {
      // The second batch's statement fails, as if the connection dropped.
      const interrupted = new Proxy(q, {
        get(target, key, receiver) {
          if (key !== 'query') return Reflect.get(target, key, receiver) as unknown;
          return (sql: string, params?: unknown[]) =>
            sql.includes('DELETE FROM send_checks') && ++batches === 2
              ? Promise.reject(new Error('connection lost'))
              : target.query(sql, params);
        },
      });
      return new ChecksOnReplicas1764140000000().up(interrupted).then(
        () => null,
        (error: Error) => error.message,
      );
    });
    expect(failure).toBe('connection lost');
    expect(await db.query('SELECT count(*)::int AS n FROM send_checks')).toEqual([{ n: 250 }]);
    expect(await deliveryStates(db)).toEqual({ 'pending/0': 250, 'sent/1': 201 });

    expect(await migrateThrough(db.url, MIGRATIONS)).toEqual([
      'ChecksOnReplicas1764140000000',
      'ExpireOpenDeliveries1764150000000',
      'RetentionPartitions1764160000000',
      'Inbox1764170000000',
      'Webhooks1764180000000',
    ]);
    // Every named delivery recorded as sent once; the open row past its TTL expired.
    expect(await deliveryStates(db)).toEqual({ 'sent/1': 450, 'expired/1': 1 });
    expect(await db.query(`SELECT to_regclass('send_checks') AS t`)).toEqual([{ t: null }]);
  });

  it('changes nothing when run again after it completed (interrupted between its last batch and its record)', async () => {
    const before = await deliveryStates(db);
    await withQueryRunner(db, async (q) => {
      await new ChecksOnReplicas1764140000000().up(q);
      await new ExpireOpenDeliveries1764150000000().up(q);
    });
    expect(await deliveryStates(db)).toEqual(before);
  });
});
