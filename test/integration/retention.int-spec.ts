import { randomUUID } from 'node:crypto';
import { getNotification, publish, request, userToken } from '../helpers/api';
import { InProcessHerald } from '../helpers/in-process';
import { scrape } from '../helpers/metrics';
import { holdFor, waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';
import { idBoundAt, newNotificationId } from '../../apps/herald/src/record/notification-id';
import { RetentionRepository } from '../../apps/herald/src/record/retention.repository';
import { partitionWidthMs } from '../../apps/herald/src/retention/partition-plan';
import { DataSource } from 'typeorm';

/** 3.6 s: partitions of 1 s, a retention run every 250 ms. */
const RETENTION_MS = 3_600;
const PARTITION_MS = partitionWidthMs(RETENTION_MS);
/** Retention runs (one each 250 ms here) a test lets pass while what it must keep stays. */
const RUNS_THAT_KEEP = 4;

/**
 * Retention with a retention of seconds, the app in-process against real PostgreSQL (ADR 0020): a finished
 * notification leaves with its partition, an unfinished one never does (however long it waits), the history
 * is emptied by TTL in batches, keys leave with their notifications, and users long gone are removed unless
 * something still ties them.
 */
describe('Retention (in-process, retention of seconds)', () => {
  let herald: InProcessHerald;
  const clients: TestClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const connect = async (userId: string) => {
    const client = await TestClient.connect(herald.ws, userToken(userId));
    clients.push(client);
    return client;
  };
  /** The partition holding the notification, or undefined once it is gone. */
  const partitionOf = async (id: string) =>
    (
      await herald.db.query<{ part: string }>(
        `SELECT tableoid::regclass::text AS part FROM notifications WHERE id = $1`,
        [id],
      )
    )[0]?.part;
  const rowsOf = async (id: string) =>
    (
      await herald.db.query<{ n: number }>(
        `SELECT ((SELECT count(*) FROM deliveries WHERE notification_id = $1)
              + (SELECT count(*) FROM broadcast_acks WHERE notification_id = $1)
              + (SELECT count(*) FROM idempotency_keys WHERE notification_id = $1))::int AS n`,
        [id],
      )
    )[0]!.n;
  /** Waits into the next partition window (1 s wide), so what is published next is in a partition of its own. */
  const nextWindow = () => {
    const windowEnd = (Math.floor(Date.now() / PARTITION_MS) + 1) * PARTITION_MS;
    return waitFor('the next partition window', () => Date.now() >= windowEnd, 2 * PARTITION_MS, 10);
  };
  /** Completed retention runs so far (the app's histogram count). */
  const retentionRuns = async () =>
    (await scrape([herald.http])).get('herald_retention_run_duration_seconds_count') ?? 0;

  beforeAll(async () => {
    herald = await InProcessHerald.start('retention', {
      HERALD_RETENTION_HOURS: String(RETENTION_MS / 3_600_000),
      HERALD_USER_RETENTION_DAYS: String(3_000 / 86_400_000),
      // The inbox's hold on retention is inbox.int-spec's.
      HERALD_INBOX_RETENTION_DAYS: '0',
    });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await herald?.stop();
  });

  it('removes an acked notification with its rows and key, and never one a recipient has not received', async () => {
    const ann = user('ann');
    const bob = user('bob');
    const client = await connect(ann);
    const key = `k-${randomUUID()}`;
    const acked = await publish(herald.http, { to: { users: [ann] }, event: 'acked' }, key);
    await client.notification(acked.id);
    await client.ack(acked.id);
    expect(await partitionOf(acked.id)).toMatch(/^notifications_p\d{8}t\d{6}$/);
    expect(await rowsOf(acked.id)).toBe(2); // its delivery row and its key

    await nextWindow();
    const unread = await publish(herald.http, { to: { users: [bob] }, event: 'unread', ttlSeconds: 3600 });
    expect(await partitionOf(unread.id)).not.toBe(await partitionOf(acked.id));

    await waitFor('the acked notification to leave', async () => (await partitionOf(acked.id)) === undefined, 15_000);
    expect(await rowsOf(acked.id)).toBe(0);
    expect((await request(herald.http, 'GET', `/v1/notifications/${acked.id}`)).status).toBe(404);
    // Its key left with it: sent again, it publishes anew.
    const again = await publish(herald.http, { to: { users: [ann] }, event: 'acked' }, key);
    expect(again.id).not.toBe(acked.id);

    // Three retention periods later, the unread one is still whole, and is delivered when bob comes.
    await holdFor('three retention periods, past which a final partition would be gone', 3 * RETENTION_MS);
    expect(await partitionOf(unread.id)).toBeDefined();
    expect((await getNotification(herald.http, unread.id)).counts).toMatchObject({ pending: 1 });
    const bobClient = await connect(bob);
    await bobClient.notification(unread.id);
    await bobClient.ack(unread.id);
    // Final now: it leaves a retention later.
    await waitFor(
      'the unread one, now acked, to leave',
      async () => (await partitionOf(unread.id)) === undefined,
      15_000,
    );
  }, 60_000);

  it('keeps a broadcast a subscriber has not acked, drops an expired one, and settles past what was dropped', async () => {
    const topic = `news-${randomUUID().slice(0, 8)}`;
    const carl = user('carl');
    const dora = user('dora');
    for (const u of [carl, dora]) {
      const c = await connect(u);
      expect(await c.command({ type: 'subscribe', channel: topic, id: 's1' })).toMatchObject({ type: 'ack' });
    }
    await Promise.all(clients.splice(0).map((c) => c.close())); // carl stays away from here on
    const doraClient = await connect(dora);

    const expiring = await publish(herald.http, { to: { topic }, event: 'short', ttlSeconds: 1 });
    await doraClient.notification(expiring.id);
    await doraClient.ack(expiring.id);
    await nextWindow();
    const kept = await publish(herald.http, { to: { topic }, event: 'long', ttlSeconds: 3600 });
    await doraClient.notification(kept.id);
    await doraClient.ack(kept.id);

    // Carl never acked the expiring one: it leaves by its TTL (1 s) and the retention after it.
    await waitFor('the expired broadcast to leave', async () => (await partitionOf(expiring.id)) === undefined, 15_000);
    // Two retention periods on, the one carl has not acked is still there.
    await holdFor('two retention periods, past which a final partition would be gone', 2 * RETENTION_MS);
    expect(await partitionOf(kept.id)).toBeDefined();
    expect((await getNotification(herald.http, kept.id)).counts).toMatchObject({ pending: 1, acked: 1 });

    // Carl comes back: he gets the kept one, and his ack moves his floor over the offset retention removed.
    const carlClient = await connect(carl);
    await carlClient.notification(kept.id);
    await carlClient.ack(kept.id);
    await waitFor("carl's cursor to pass both offsets", async () => {
      const [row] = await herald.db.query<{ through: string; head: string }>(
        `SELECT c.settled_through AS through, s.head FROM cursors c JOIN streams s ON s.id = c.stream_id
          WHERE c.user_id = $1 AND s.topic = $2`,
        [carl, topic],
      );
      return row && row.through === row.head && row.head === '2';
    });
    await waitFor(
      'the kept broadcast, now acked by all, to leave',
      async () => (await partitionOf(kept.id)) === undefined,
      15_000,
    );
  }, 60_000);

  it('empties the history by TTL in batches, and moves its rows of a new window into the window', async () => {
    // Rows from before partitioning (ids of any version) live in the history (the DEFAULT partitions).
    const old = randomUUID();
    const live = randomUUID();
    for (const [id, age] of [
      [old, `interval '2 hours'`],
      [live, `interval '0 hours'`],
    ] as const) {
      // One statement, so a retention run sees the notification with its delivery or neither (two, and a run
      // between them removed the notification and left the delivery inserted after its snapshot).
      await herald.db.query(
        `WITH n AS (
           INSERT INTO notifications_history (id, publisher_id, request_hash, audience, event, payload, ttl_seconds,
                                              recipients, created_at, expires_at)
           VALUES ($1, 'old-release', 'h', '{"users":["u"]}', 'e', '{}', 60, 1, now() - ${age},
                   now() - ${age} + interval '60 s')
           RETURNING id, seq, expires_at)
         INSERT INTO deliveries_history (notification_id, user_id, seq, expires_at, status)
         SELECT id, 'u', seq, expires_at, 'acked' FROM n`,
        [id],
      );
    }
    await waitFor(
      'the expired history notification to leave',
      async () => (await partitionOf(old)) === undefined,
      15_000,
    );
    expect(await rowsOf(old)).toBe(0);
    expect(await partitionOf(live)).toBe('notifications_history');

    // A window made later takes the history's rows that fall in it (here: an id an hour ahead).
    const ahead = Date.now() + 3_600_000;
    const early = newNotificationId(ahead + 10);
    await herald.db.query(
      `INSERT INTO notifications (id, publisher_id, request_hash, audience, event, payload, ttl_seconds, expires_at)
       VALUES ($1, 'clock-ahead', 'h', '{"users":["u"]}', 'e', '{}', 60, now() + interval '60 s')`,
      [early],
    );
    expect(await partitionOf(early)).toBe('notifications_history');
    const source = new DataSource({ type: 'postgres', url: herald.db.url });
    await source.initialize();
    try {
      const suffix = `p${new Date(ahead).toISOString().slice(0, 10).replace(/-/g, '')}t235959`;
      expect(await new RetentionRepository(source).makePartition(suffix, ahead, ahead + 1_000)).toBe(true);
      expect(await partitionOf(early)).toBe(`notifications_${suffix}`);
      expect(idBoundAt(ahead) <= early).toBe(true);
      // An overlapping window is refused.
      expect(await new RetentionRepository(source).makePartition('p20991231t000000', ahead - 500, ahead + 500)).toBe(
        false,
      );
    } finally {
      await source.destroy();
    }

    const metrics = await scrape([herald.http]);
    expect(metrics.get('herald_retention_partitions_dropped_total')).toBeGreaterThan(0);
    expect(metrics.get('herald_retention_rows_removed_total{what="history"}')).toBeGreaterThanOrEqual(1);
    expect(metrics.get('herald_retention_run_duration_seconds_count')).toBeGreaterThan(0);
    expect(metrics.get('herald_retention_oldest_notification_seconds')).toBeGreaterThanOrEqual(0);
  }, 60_000);

  it('removes a user long gone with nothing to receive, and keeps one subscribed, online or with something open', async () => {
    const gone = user('gone');
    const subscribed = user('subscribed');
    const online = user('online');
    const waiting = user('waiting');
    const sub = await connect(subscribed);
    expect(await sub.command({ type: 'subscribe', channel: `t-${subscribed}`, id: 's' })).toMatchObject({
      type: 'ack',
    });
    await sub.close();
    await connect(online);
    // `gone` is known from a publish whose TTL ends at once; `waiting` has one still to come.
    await publish(herald.http, { to: { users: [gone] }, event: 'brief', ttlSeconds: 1 });
    await publish(herald.http, { to: { users: [waiting] }, event: 'later', ttlSeconds: 3600 });
    const known = async (id: string) => (await herald.db.query(`SELECT 1 FROM users WHERE id = $1`, [id])).length === 1;
    await waitFor('the user long gone to be removed', async () => !(await known(gone)), 15_000);
    expect(await herald.db.query(`SELECT 1 FROM cursors WHERE user_id = $1`, [gone])).toEqual([]);
    // A second's worth of runs more: none of them removes a user something still ties.
    const runs = await retentionRuns();
    await waitFor(
      `${RUNS_THAT_KEEP} more retention runs`,
      async () => (await retentionRuns()) >= runs + RUNS_THAT_KEEP,
    );
    for (const kept of [subscribed, online, waiting]) expect(await known(kept)).toBe(true);
    const metrics = await scrape([herald.http]);
    expect(metrics.get('herald_retention_rows_removed_total{what="users"}')).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
