import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { Audience } from '@herald/protocol';
import { ACK_SESSION_OPTIONS, createDataSource, runMigrations } from '../../apps/herald/src/database/data-source';
import { DeliveryRepository } from '../../apps/herald/src/record/delivery.repository';
import { NotificationRepository } from '../../apps/herald/src/record/notification.repository';
import { RedeliveryRepository } from '../../apps/herald/src/record/redelivery.repository';
import { ReplayRepository } from '../../apps/herald/src/record/replay.repository';
import { StreamRepository } from '../../apps/herald/src/record/stream.repository';
import { UserRepository } from '../../apps/herald/src/record/user.repository';
import { createTestDatabase, TestDatabase } from '../helpers/database';

/** The broadcast record of ADR 0007 (streams, cursors, the ack journal, hand-off) against real PostgreSQL. */
describe('Stream record', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ackSource: DataSource;
  let notifications: NotificationRepository;
  let deliveries: DeliveryRepository;
  let replays: ReplayRepository;
  let redelivery: RedeliveryRepository;
  let streams: StreamRepository;
  let users: UserRepository;
  const soon = () => new Date(Date.now() + 60_000);

  const publish = async (audience: Audience, ttlSeconds = 60) =>
    notifications.create(
      {
        id: randomUUID(),
        publisherId: 'pk_stream',
        idempotencyKey: null,
        requestHash: 'h',
        audience,
        event: 'stream.event',
        payload: { n: 1 },
        ttlSeconds,
      },
      soon(),
    );
  const cursor = async (userId: string, topic: string | null) =>
    (
      await db.query<{
        settled_through: string;
        settled_above: string[];
        from_offset: string;
        until_offset: string | null;
      }>(
        `SELECT c.settled_through, c.settled_above, c.from_offset, c.until_offset FROM cursors c
           JOIN streams s ON s.id = c.stream_id
          WHERE c.user_id = $1 AND s.topic IS NOT DISTINCT FROM $2`,
        [userId, topic],
      )
    )[0];
  const rowsOf = async (notificationId: string) =>
    db.query<{ user_id: string; status: string; attempts: number }>(
      'SELECT user_id, status, attempts FROM deliveries WHERE notification_id = $1 ORDER BY user_id',
      [notificationId],
    );

  beforeAll(async () => {
    db = await createTestDatabase('streams');
    dataSource = createDataSource(db.url, 'herald-int-streams');
    await dataSource.initialize();
    await runMigrations(dataSource);
    ackSource = createDataSource(db.url, 'herald-int-streams-acks', { max: 4, sessionOptions: ACK_SESSION_OPTIONS });
    await ackSource.initialize();
    notifications = new NotificationRepository(dataSource, 'stream');
    deliveries = new DeliveryRepository(ackSource);
    replays = new ReplayRepository(dataSource);
    redelivery = new RedeliveryRepository(dataSource);
    streams = new StreamRepository(dataSource, ackSource);
    users = new UserRepository(dataSource);
  });

  afterAll(async () => {
    await ackSource?.destroy();
    await dataSource?.destroy();
    await db?.drop();
  });

  it('resolves a topic audience at the commit: a later subscriber never gets it, a later unsubscriber still does', async () => {
    for (const u of ['t1', 't2']) await users.touch(u);
    await users.subscribe('t1', 'news', 10);
    await users.subscribe('t2', 'news', 10);
    const first = await publish({ topic: 'news' });
    expect(first.recipients).toBe(2);
    await users.unsubscribe('t2', 'news');
    await users.touch('t3');
    await users.subscribe('t3', 'news', 10);
    const second = await publish({ topic: 'news' });
    expect(second.recipients).toBe(2); // t1 and t3
    expect(second.notification.stream!.offset).toBe(first.notification.stream!.offset + 1);
    // No delivery row for either: one notification row each.
    expect(await rowsOf(first.notification.id)).toEqual([]);

    const listed = await notifications.listDeliveries(first.notification.id, null, 10);
    expect(listed.map((d) => [d.userId, d.status])).toEqual([
      ['t1', 'pending'],
      ['t2', 'pending'],
    ]);
    const replayed = async (userId: string) =>
      (await replays.replayBatch(userId, 0, 100, soon())).map((r) => r.notification.id);
    expect(await replayed('t2')).toEqual([first.notification.id]);
    expect(await replayed('t3')).toEqual([second.notification.id]);
    expect(await replayed('t1')).toEqual([first.notification.id, second.notification.id]);
  });

  it('counts a first-seen user in an everyone publish exactly when their cursor covers its offset', async () => {
    const before = await publish({ all: true });
    await users.touch('e-new');
    const after = await publish({ all: true });
    expect(after.recipients).toBe(before.recipients + 1);
    const replayed = (await replays.replayBatch('e-new', 0, 100, soon())).map((r) => r.notification.id);
    expect(replayed).toContain(after.notification.id);
    expect(replayed).not.toContain(before.notification.id);
    // A user first seen through a user-list publish joins the everyone stream too.
    await publish({ users: ['e-listed'] });
    const third = await publish({ all: true });
    expect(third.recipients).toBe(after.recipients + 1);
  });

  it('acks through the cursor and the journal: once, duplicates answered, the floor moves, counts sum up', async () => {
    for (const u of ['a1', 'a2']) {
      await users.touch(u);
      await users.subscribe(u, 'acks', 10);
    }
    const [n1, n2, n3] = [
      await publish({ topic: 'acks' }),
      await publish({ topic: 'acks' }),
      await publish({ topic: 'acks' }),
    ];
    const ack = (userId: string, ...ns: (typeof n1)[]) =>
      streams.ackMany(ns.map((n) => ({ notificationId: n.notification.id, userId })));

    // Out of order: n2 first sits above the floor; then n1 moves the floor over both.
    expect((await ack('a1', n2)).map((a) => a.outcome)).toEqual(['acked']);
    const base = Number((await cursor('a1', 'acks'))!.from_offset);
    expect(await cursor('a1', 'acks')).toMatchObject({
      settled_through: String(base),
      settled_above: [String(base + 2)],
    });
    expect((await ack('a1', n1, n1, n2)).map((a) => a.outcome)).toEqual(['acked', 'duplicate', 'duplicate']);
    expect(await cursor('a1', 'acks')).toMatchObject({ settled_through: String(base + 2), settled_above: [] });

    // Two devices of a2 acking n3 at once: one ok, one duplicate.
    const both = await Promise.all([ack('a2', n3), ack('a2', n3)]);
    expect(both.map((b) => b[0]!.outcome).sort()).toEqual(['acked', 'duplicate']);
    // Not a recipient (no cursor), and a notification that is not a stream one: unknown.
    expect((await ack('nobody', n1))[0]!.outcome).toBe('unknown');

    expect(await notifications.countDeliveries(n1.notification.id)).toEqual({
      pending: 1,
      sent: 0,
      acked: 1,
      expired: 0,
      failed: 0,
    });
    expect(await notifications.countDeliveries(n3.notification.id)).toMatchObject({ pending: 1, acked: 1 });
    const listed = await notifications.listDeliveries(n1.notification.id, null, 10);
    expect(listed.find((d) => d.userId === 'a1')).toMatchObject({ status: 'acked' });
    expect(listed.find((d) => d.userId === 'a1')!.ackedAt).toBeInstanceOf(Date);
    // Replay leaves out what is acked.
    expect((await replays.replayBatch('a1', 0, 100, soon())).map((r) => r.notification.id)).toEqual([
      n3.notification.id,
    ]);
  });

  it('hands an unacked send off to a row at its check, which then takes the ack; an acked one writes no row', async () => {
    for (const u of ['h1', 'h2']) {
      await users.touch(u);
      await users.subscribe(u, 'checks', 10);
    }
    const n = await publish({ topic: 'checks' });
    const stream = n.notification.stream!;
    const sent = await streams.openAmong(stream.id, stream.offset, ['h1', 'h2', 'stranger']);
    expect(sent.sort()).toEqual(['h1', 'h2']);
    await streams.ackMany([{ notificationId: n.notification.id, userId: 'h1' }]);
    // The replica's check names every user it sent to; only the unacked one becomes a row.
    expect(await streams.handOff(n.notification.id, ['h1', 'h2'], new Date())).toBe(1);
    expect(await rowsOf(n.notification.id)).toEqual([{ user_id: 'h2', status: 'sent', attempts: 1 }]);
    // A second send of it finds h2 settled on its cursor (the row resends it now).
    expect(await streams.openAmong(stream.id, stream.offset, ['h2'])).toEqual([]);
    expect((await streams.ackMany([{ notificationId: n.notification.id, userId: 'h2' }]))[0]!.outcome).toBe('row');
    expect((await deliveries.ackMany([{ notificationId: n.notification.id, userId: 'h2' }]))[0]!.outcome).toBe('acked');
    expect(await notifications.countDeliveries(n.notification.id)).toMatchObject({ acked: 2, pending: 0, sent: 0 });
  });

  it("hands a delivery checked by two replicas off once, at the first check's send time", async () => {
    for (const u of ['d1', 'd2', 'd3']) {
      await users.touch(u);
      await users.subscribe(u, 'twice', 10);
    }
    const n = await publish({ topic: 'twice' });
    const first = new Date(Date.now() - 2000);
    const second = new Date(Date.now() - 1000);
    expect(await streams.handOff(n.notification.id, ['d1', 'd2'], first)).toBe(2);
    expect(await streams.handOff(n.notification.id, ['d2', 'd3'], second)).toBe(1);
    expect(await streams.handOff(n.notification.id, ['d1', 'd2', 'd3'], second)).toBe(0);
    expect(await rowsOf(n.notification.id)).toEqual(
      ['d1', 'd2', 'd3'].map((user_id) => ({ user_id, status: 'sent', attempts: 1 })),
    );
    const [d2] = await db.query<{ first_sent_at: Date }>(
      `SELECT first_sent_at FROM deliveries WHERE notification_id = $1 AND user_id = 'd2'`,
      [n.notification.id],
    );
    expect(d2!.first_sent_at).toEqual(first);
  });

  it('replays direct and stream notifications merged in seq order, and hands off what a replay left unacked', async () => {
    await users.touch('m1');
    await users.subscribe('m1', 'merge', 10);
    const a = await publish({ users: ['m1'] });
    const b = await publish({ topic: 'merge' });
    const c = await publish({ users: ['m1'] });
    const d = await publish({ all: true });
    const batch = await replays.replayBatch('m1', 0, 100, new Date(Date.now() - 1000));
    expect(batch.map((r) => r.notification.id)).toEqual([a, b, c, d].map((x) => x.notification.id));
    expect(batch.map((r) => r.streamed)).toEqual([false, true, false, true]);
    await streams.ackMany([{ notificationId: b.notification.id, userId: 'm1' }]);
    const settled = await redelivery.settleReplayChecks(10);
    // The direct ones go on the clock as before; d, unacked, becomes a row; b, acked, does not.
    expect(settled.notificationIds.sort()).toEqual([a, c, d].map((x) => x.notification.id).sort());
    expect(settled.handedOff).toBe(1);
    expect(await rowsOf(d.notification.id)).toEqual([{ user_id: 'm1', status: 'sent', attempts: 1 }]);
    expect(await rowsOf(b.notification.id)).toEqual([]);
  });

  it('leaves expired stream notifications out of replay, lets the floor pass them, and counts them expired', async () => {
    await users.touch('x1');
    await users.subscribe('x1', 'ttl', 10);
    const gone = await publish({ topic: 'ttl' }, 1);
    const live = await publish({ topic: 'ttl' });
    await db.query(`UPDATE notifications SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      gone.notification.id,
    ]);
    expect((await replays.replayBatch('x1', 0, 100, soon())).map((r) => r.notification.id)).toEqual([
      live.notification.id,
    ]);
    expect((await streams.ackMany([{ notificationId: gone.notification.id, userId: 'x1' }]))[0]!.outcome).toBe(
      'expired',
    );
    await streams.ackMany([{ notificationId: live.notification.id, userId: 'x1' }]);
    expect(await cursor('x1', 'ttl')).toMatchObject({
      settled_through: String(live.notification.stream!.offset),
      settled_above: [],
    });
    expect(await notifications.countDeliveries(gone.notification.id)).toMatchObject({ expired: 1, pending: 0 });
  });

  it('hands the open offsets of an earlier membership to rows when a user subscribes again', async () => {
    await users.touch('r1');
    await users.subscribe('r1', 'again', 10);
    const kept = await publish({ topic: 'again' });
    await users.unsubscribe('r1', 'again');
    const missed = await publish({ topic: 'again' });
    expect(missed.recipients).toBe(0);
    await users.subscribe('r1', 'again', 10);
    expect(await rowsOf(kept.notification.id)).toEqual([{ user_id: 'r1', status: 'pending', attempts: 0 }]);
    const replayed = (await replays.replayBatch('r1', 0, 100, soon())).map((r) => r.notification.id);
    expect(replayed).toContain(kept.notification.id);
    expect(replayed).not.toContain(missed.notification.id);
  });

  it('keeps offsets gapless and recipients exact under concurrent publishes, subscribes and first-seen users', async () => {
    const published = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        if (i % 4 === 0) await users.subscribe(`c${i}`, 'race', 100);
        if (i % 4 === 1) await users.touch(`c${i}`);
        return publish(i % 2 === 0 ? { topic: 'race' } : { all: true });
      }),
    );
    for (const p of published) {
      const stream = p.notification.stream;
      if (!stream) {
        // Published to 'race' before any subscribe made its stream: no stream, nobody to reach.
        expect(p.recipients).toBe(0);
        continue;
      }
      const [row] = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM cursors
          WHERE stream_id = $1 AND from_offset < $2 AND (until_offset IS NULL OR until_offset >= $2)`,
        [stream.id, stream.offset],
      );
      expect(p.recipients).toBe(Number(row!.n));
    }
    const gaps = await db.query<{ stream_id: string; n: string; head: string }>(
      `SELECT s.id AS stream_id, count(x.id) AS n, s.head FROM streams s
         LEFT JOIN notifications x ON x.stream_id = s.id GROUP BY s.id, s.head`,
    );
    for (const g of gaps) expect(Number(g.n)).toBe(Number(g.head));
  });
});
