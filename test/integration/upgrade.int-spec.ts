import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliveryStatus, NotificationFrame } from '@herald/protocol';
import { SCHEMA_VERSION } from '../../apps/herald/src/database/data-source';
import { getNotification, publish, userToken } from '../helpers/api';
import { createTestDatabase, TestDatabase } from '../helpers/database';
import { InProcessHerald } from '../helpers/in-process';
import {
  insertOldNotification,
  insertReplayCheck,
  insertSendCheck,
  LogLine,
  migrateThrough,
  runMigrateCli,
} from '../helpers/old-record';
import { deleteRedisPrefix, testRedisClient, testRedisPrefix } from '../helpers/redis';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

const ago = (seconds: number) => new Date(Date.now() - seconds * 1000);
const counts = (partial: Partial<Record<DeliveryStatus, number>>) => ({
  pending: 0,
  sent: 0,
  acked: 0,
  expired: 0,
  failed: 0,
  ...partial,
});

/** What the conversion logged of one step: its last `conversion progress` line. */
function lastProgress(lines: LogLine[], step: string): LogLine | undefined {
  return lines.filter((l) => l.message === 'conversion progress' && l.step === step).at(-1);
}

/** A PostgreSQL client program (Debian's postgresql-client), which must succeed. */
function pgTool(program: 'pg_dump' | 'pg_restore', args: string[]): void {
  const result = spawnSync(program, args, { encoding: 'utf8', timeout: 60_000 });
  if (result.error)
    throw new Error(`${program} could not run (is postgresql-client installed?): ${result.error.message}`);
  expect({ program, status: result.status, stderr: result.stderr }).toEqual({ program, status: 0, stderr: '' });
}

/** Every table's content (a digest per table) and the migrations applied: what a restore must bring back. */
async function contents(db: TestDatabase): Promise<Record<string, unknown>> {
  const tables = (
    await db.query<{ name: string }>(
      `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename COLLATE "C"`,
    )
  ).map((t) => t.name);
  const out: Record<string, unknown> = {
    migrations: (await db.query<{ name: string }>('SELECT name FROM herald_migrations ORDER BY id')).map((m) => m.name),
  };
  for (const table of tables) {
    const [row] = await db.query<{ n: number; digest: string | null }>(
      `SELECT count(*)::int AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest FROM ${table} t`,
    );
    out[table] = row;
  }
  return out;
}

/** The schema as the server sees it: columns, indexes, functions. */
async function schemaOf(db: TestDatabase): Promise<unknown[]> {
  return [
    await db.query(`SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
                     WHERE table_schema = 'public' ORDER BY 1, 2`),
    await db.query(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`),
    await db.query(`SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1`),
  ];
}

/**
 * The upgrade from the previous release (issue 21, item 5): a database it populated (every delivery state,
 * unsettled send and replay checks, jobs of its retired redelivery queue in Redis) converted by
 * `npm run migrate`, then the new server run on it in-process.
 */
describe('Upgrade of a previous release database', () => {
  let db: TestDatabase | undefined;
  let redisPrefix: string;
  let herald: InProcessHerald | undefined;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('upgrade');
    redisPrefix = testRedisPrefix('upgrade');
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    if (herald) await herald.stop();
    else {
      await db?.drop();
      await deleteRedisPrefix(redisPrefix);
    }
  });

  it('converts a populated database, then delivers what was pending or sent and keeps final states final', async () => {
    const old = db!;
    expect(await migrateThrough(old.url)).toHaveLength(4);
    const alice = 'alice';
    const one = (status: 'pending' | 'sent' | 'acked' | 'expired' | 'failed', attempts?: number) => ({
      deliveries: [{ userId: alice, status, ...(attempts !== undefined ? { attempts } : {}) }],
    });
    const pending = await insertOldNotification(old, { ...one('pending'), event: 'old.pending' });
    const sent = await insertOldNotification(old, { ...one('sent'), event: 'old.sent' });
    const acked = await insertOldNotification(old, one('acked'));
    const expired = await insertOldNotification(old, { ...one('expired'), ageSeconds: 7200 });
    const failed = await insertOldNotification(old, one('failed', 3));
    // Open past its TTL: the previous sweep had not got to it.
    const stale = await insertOldNotification(old, {
      deliveries: [
        { userId: alice, status: 'pending' },
        { userId: 'bob', status: 'sent', nextAttemptAt: ago(30) },
      ],
      ttlSeconds: 60,
      ageSeconds: 120,
    });
    // A topic broadcast as a row per recipient, its send to alice and carol recorded once (a send check).
    const news = await insertOldNotification(old, {
      topic: 'news',
      event: 'old.news',
      deliveries: [
        { userId: alice, status: 'pending' },
        { userId: 'bob', status: 'acked' },
        { userId: 'carol', status: 'sent' },
      ],
    });
    await insertSendCheck(old, news.id, [alice, 'carol'], ago(5), ago(1));
    // A replay batch that sent alice `replayed` and was not checked yet; dave's copy was never sent.
    const replayed = await insertOldNotification(old, {
      event: 'old.replayed',
      deliveries: [
        { userId: alice, status: 'pending' },
        { userId: 'dave', status: 'pending' },
      ],
    });
    await insertReplayCheck(old, alice, replayed.seq - 1, replayed.seq, ago(3), ago(1));
    const redis = testRedisClient();
    try {
      await redis.zadd(`${redisPrefix}:bull:redelivery:delayed`, 1, 'job-1');
      await redis.hset(`${redisPrefix}:bull:redelivery:job-1`, 'data', '{"checks":[]}');

      const { code, lines, output } = await runMigrateCli(old.url, redisPrefix);
      expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
      expect(lines.find((l) => l.message === 'migrations applied')?.applied).toEqual([
        'BroadcastStreams1764130000000',
        'ChecksOnReplicas1764140000000',
        'ExpireOpenDeliveries1764150000000',
        'RetentionPartitions1764160000000',
        'Inbox1764170000000',
        SCHEMA_VERSION,
      ]);
      expect(lastProgress(lines, 'tables partitioned (history attached as default)')).toMatchObject({
        done: 3,
        total: 3,
      });
      expect(lastProgress(lines, 'send checks settled')).toMatchObject({ done: 1, total: 1 });
      expect(lastProgress(lines, 'open deliveries past their TTL expired')).toMatchObject({ done: 2, total: 2 });
      // Four users, three of them subscribed to `news`.
      expect(lastProgress(lines, 'cursors from subscriptions and users')).toMatchObject({ done: 7, total: 7 });
      expect(await redis.keys(`${redisPrefix}:bull:redelivery:*`)).toEqual([]);
    } finally {
      redis.disconnect();
    }

    // The converted record, before any replica runs on it.
    const row = async (id: string, user: string) =>
      (
        await old.query<{ status: string; attempts: number; due: boolean }>(
          `SELECT status, attempts, next_attempt_at IS NOT NULL AS due FROM deliveries
            WHERE notification_id = $1 AND user_id = $2`,
          [id, user],
        )
      )[0];
    expect(await row(stale.id, alice)).toEqual({ status: 'expired', attempts: 0, due: false });
    expect(await row(stale.id, 'bob')).toEqual({ status: 'expired', attempts: 1, due: false });
    // The send check recorded alice's send and made it due; carol's send was already recorded.
    expect(await row(news.id, alice)).toEqual({ status: 'sent', attempts: 1, due: true });
    expect(await row(news.id, 'carol')).toEqual({ status: 'sent', attempts: 1, due: false });
    expect(await old.query(`SELECT to_regclass('send_checks') AS t`)).toEqual([{ t: null }]);
    // Replay checks keep their meaning in the new record: the new sweep settles them at their time.
    expect(await old.query(`SELECT user_id FROM replay_checks`)).toEqual([{ user_id: alice }]);

    herald = await InProcessHerald.start('upgrade', {}, { db: old, redisPrefix });
    const h = herald;
    // Alice is offline: the sweep settles the replay check (the send recorded) and parks what is due.
    await waitFor(
      'the replay check to be settled',
      async () => (await old.query('SELECT 1 FROM replay_checks')).length === 0,
    );
    await waitFor('the checked sends to be parked', async () => {
      const [a, b] = [await row(replayed.id, alice), await row(news.id, alice)];
      return a?.status === 'sent' && !a.due && b?.status === 'sent' && !b.due;
    });
    expect(await row(replayed.id, alice)).toEqual({ status: 'sent', attempts: 1, due: false });

    const client = await TestClient.connect(h.ws, userToken(alice), { autoAck: true });
    clients.push(client);
    const open = [pending, sent, news, replayed];
    for (const n of open) await client.notification(n.id);
    const frames = (): NotificationFrame[] => client.notifications();
    // Replayed in seq order, each as the send after the ones recorded (and acked at once); nothing final
    // is sent again.
    expect(frames().map((f) => [f.id, f.attempt])).toEqual([
      [pending.id, 1],
      [sent.id, 2],
      [news.id, 2],
      [replayed.id, 2],
    ]);

    const expected: [{ id: string }, Partial<Record<DeliveryStatus, number>>][] = [
      [pending, { acked: 1 }],
      [sent, { acked: 1 }],
      [acked, { acked: 1 }],
      [expired, { expired: 1 }],
      [failed, { failed: 1 }],
      [stale, { expired: 2 }],
      [news, { acked: 2, sent: 1 }],
      [replayed, { acked: 1, pending: 1 }],
    ];
    for (const [n, want] of expected) {
      await waitFor(`the counts of ${n.id}`, async () => {
        const view = await getNotification(h.http, n.id);
        return JSON.stringify(view.counts) === JSON.stringify(counts(want)) ? view : undefined;
      });
    }

    // The converted record takes new broadcasts: the old users and subscriptions have cursors.
    const later = await publish(h.http, { to: { topic: 'news' }, event: 'new.news' });
    const everyone = await publish(h.http, { to: { all: true }, event: 'new.everyone' });
    expect([later.recipients, everyone.recipients]).toEqual([3, 4]);
    await client.notification(later.id);
    await client.notification(everyone.id);
    expect(frames().filter((f) => [acked.id, expired.id, failed.id, stale.id].includes(f.id))).toEqual([]);

    // Carol, whose old broadcast row was sent and parked, gets it and the new one on connect, in order.
    const carol = await TestClient.connect(h.ws, userToken('carol'), { autoAck: true });
    clients.push(carol);
    await carol.notification(later.id);
    expect(carol.notifications().map((f) => [f.id, f.attempt])).toEqual([
      [news.id, 2],
      [later.id, 1],
      [everyone.id, 1],
    ]);
  });
});

/**
 * The documented way back (docs/deployment.md, "Upgrading to the stream record"): a backup taken with
 * pg_dump before the conversion, restored with pg_restore into a fresh database, is the previous release's
 * database as it was, for the previous release to run on.
 */
describe('Restore of a backup taken before the upgrade', () => {
  it('brings back the previous schema and every row as they were, with nothing for the previous release to migrate', async () => {
    const dbs: TestDatabase[] = [];
    const prefix = testRedisPrefix('upgrade-restore');
    const folder = mkdtempSync(join(tmpdir(), 'herald-backup-'));
    const dump = join(folder, 'herald-before-upgrade.dump');
    try {
      const old = await createTestDatabase('upgrade_backup');
      dbs.push(old);
      await migrateThrough(old.url);
      const news = await insertOldNotification(old, {
        topic: 'news',
        deliveries: [
          { userId: 'ann', status: 'pending' },
          { userId: 'ben', status: 'acked' },
          { userId: 'cat', status: 'sent', nextAttemptAt: ago(-5) },
          { userId: 'dan', status: 'failed', attempts: 3 },
        ],
      });
      await insertOldNotification(old, { deliveries: [{ userId: 'ann', status: 'expired' }], ageSeconds: 7200 });
      await insertOldNotification(old, {
        deliveries: [{ userId: 'ben', status: 'pending' }],
        ttlSeconds: 60,
        ageSeconds: 90,
      });
      await insertSendCheck(old, news.id, ['ann'], ago(5), ago(1));
      await insertReplayCheck(old, 'ann', news.seq - 1, news.seq, ago(3), ago(1));
      const before = await contents(old);

      pgTool('pg_dump', ['--format=custom', '--file', dump, old.url]);
      const { code, output } = await runMigrateCli(old.url, prefix);
      expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
      // Converted in place: the send check settled and gone, the stale row expired.
      const converted = await contents(old);
      expect(converted.send_checks).toBeUndefined();
      expect(converted.deliveries).not.toEqual(before.deliveries);

      const restored = await createTestDatabase('upgrade_restored');
      dbs.push(restored);
      pgTool('pg_restore', ['--no-owner', '--dbname', restored.url, dump]);
      expect(await contents(restored)).toEqual(before);
      // The schema the previous release creates, and nothing of the new record.
      const reference = await createTestDatabase('upgrade_reference');
      dbs.push(reference);
      await migrateThrough(reference.url);
      expect(await schemaOf(restored)).toEqual(await schemaOf(reference));
      expect(await migrateThrough(restored.url)).toEqual([]);
    } finally {
      for (const db of dbs) await db.drop();
      await deleteRedisPrefix(prefix);
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
