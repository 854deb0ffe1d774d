import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import type { Redis } from 'ioredis';
import { Batcher } from '../../apps/herald/src/common/batcher';
import { createDataSource, runMigrations } from '../../apps/herald/src/database/data-source';
import { NotificationRepository } from '../../apps/herald/src/record/notification.repository';
import { ReplayRepository } from '../../apps/herald/src/record/replay.repository';
import { UserRepository } from '../../apps/herald/src/record/user.repository';
import { RedisKeys } from '../../apps/herald/src/redis/redis-keys';
import { PresenceEntry, PresenceRepository } from '../../apps/herald/src/routing/presence.repository';
import { publish, userToken } from '../helpers/api';
import { createTestDatabase, TestDatabase } from '../helpers/database';
import { InProcessHerald } from '../helpers/in-process';
import { deleteRedisPrefix, testRedisClient, testRedisPrefix } from '../helpers/redis';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

const user = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

/** The statements connection setup runs once per batch of connections, against real PostgreSQL and Redis. */
describe('Connection setup statements, many connections at once', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let users: UserRepository;
  let replays: ReplayRepository;
  let notifications: NotificationRepository;
  let redis: Redis;
  let presence: PresenceRepository;
  const prefix = testRedisPrefix('setup');

  const publishTo = (audience: { users: string[] } | { all: true }) =>
    notifications.create(
      {
        id: randomUUID(),
        publisherId: 'pk_setup',
        idempotencyKey: null,
        requestHash: 'h',
        audience,
        event: 'setup.event',
        payload: {},
        ttlSeconds: 60,
      },
      new Date(Date.now() + 60_000),
    );
  const everyoneCursor = async (userId: string) =>
    (
      await db.query<{ settled_through: string }>(
        `SELECT settled_through FROM cursors WHERE user_id = $1 AND stream_id = 1`,
        [userId],
      )
    )[0]?.settled_through;
  const entry = (userId: string, connectionId = randomUUID()): PresenceEntry => ({
    connectionId,
    userId,
    replicaId: 'setup-r1',
    connectedAt: new Date().toISOString(),
    remoteAddress: '127.0.0.1',
    userAgent: 'test',
  });

  beforeAll(async () => {
    db = await createTestDatabase('setup');
    dataSource = createDataSource(db.url, 'herald-int-setup');
    await dataSource.initialize();
    await runMigrations(dataSource);
    users = new UserRepository(dataSource);
    replays = new ReplayRepository(dataSource);
    notifications = new NotificationRepository(dataSource, 'stream');
    redis = testRedisClient();
    presence = new PresenceRepository(redis, new RedisKeys(prefix));
  });

  afterAll(async () => {
    redis?.disconnect();
    await deleteRedisPrefix(prefix);
    await dataSource?.destroy();
    await db?.drop();
  });

  describe('UserRepository.arrive', () => {
    it('records new and known users in one statement, duplicates included; only new ones join everyone at its head', async () => {
      const known = user('known');
      await users.touch(known);
      await publishTo({ all: true });
      const before = await db.query<{ last_seen_at: Date }>(`SELECT last_seen_at FROM users WHERE id = $1`, [known]);
      const [fresh1, fresh2] = [user('fresh'), user('fresh')];

      const open = await users.arrive([fresh1, known, fresh2, fresh1, known]);

      // Answered in the order asked: the broadcast is open for the known user; the new ones have nothing open.
      const nothing = { rows: false, streams: false };
      expect(open).toEqual([nothing, { rows: false, streams: true }, nothing, nothing, { rows: false, streams: true }]);

      const rows = await db.query<{ id: string; last_seen_at: Date }>(
        `SELECT id, last_seen_at FROM users WHERE id = ANY ($1) ORDER BY id`,
        [[known, fresh1, fresh2]],
      );
      expect(rows.map((r) => r.id).sort()).toEqual([known, fresh1, fresh2].sort());
      expect(rows.find((r) => r.id === known)!.last_seen_at.getTime()).toBeGreaterThan(
        before[0]!.last_seen_at.getTime(),
      );
      const [head] = await db.query<{ head: string }>(`SELECT head FROM streams WHERE id = 1`);
      // The known user's cursor is where it was (the broadcast is still open for it); the new ones start at the head.
      expect(await everyoneCursor(known)).toBe('0');
      expect(await everyoneCursor(fresh1)).toBe(head!.head);
      expect(await everyoneCursor(fresh2)).toBe(head!.head);
    });

    it('leaves the session as it was: the asynchronous commit of a batch of known users ends with it', async () => {
      const known = user('async');
      await users.touch(known);
      // One connection in the pool, so the next statement runs in the session that ran the batch.
      const single = createDataSource(db.url, 'herald-int-setup-single', { max: 1 });
      await single.initialize();
      try {
        const own = new UserRepository(single);
        await own.arrive([known, known]);
        const [setting] = await single.query<{ synchronous_commit: string }[]>(`SHOW synchronous_commit`);
        expect(setting!.synchronous_commit).toBe('on');
      } finally {
        await single.destroy();
      }
    });
  });

  describe('ReplayRepository.openForReplay', () => {
    it('answers each user of a mixed batch in order: open rows, open stream offsets, or nothing', async () => {
      const [pendingUser, streamUser, idle, unknown] = [user('pending'), user('stream'), user('idle'), user('unknown')];
      await users.arrive([streamUser, idle]);
      await publishTo({ users: [pendingUser] });
      await publishTo({ all: true });
      // Everyone's broadcast is open for streamUser and idle alike: idle acks it (its cursor moves past it).
      await db.query(
        `UPDATE cursors SET settled_through = (SELECT head FROM streams WHERE id = 1) WHERE user_id = $1`,
        [idle],
      );

      const open = await replays.openForReplay([pendingUser, streamUser, idle, unknown, pendingUser]);

      // pendingUser was first seen by the direct publish, at the everyone stream's head then: the broadcast
      // after it is open for it too.
      expect(open).toEqual([
        { rows: true, streams: true },
        { rows: false, streams: true },
        { rows: false, streams: false },
        { rows: false, streams: false },
        { rows: true, streams: true },
      ]);
    });

    it('does not count a delivery row that was acked', async () => {
      const done = user('done');
      await publishTo({ users: [done] });
      await db.query(
        `UPDATE cursors SET settled_through = (SELECT head FROM streams WHERE id = 1) WHERE user_id = $1`,
        [done],
      );
      expect(await replays.openForReplay([done])).toEqual([{ rows: true, streams: false }]);
      await db.query(`UPDATE deliveries SET status = 'acked', acked_at = now() WHERE user_id = $1`, [done]);
      expect(await replays.openForReplay([done])).toEqual([{ rows: false, streams: false }]);
    });
  });

  describe('PresenceRepository.addMany', () => {
    it('writes a batch in one step, counting earlier entries of the batch against the per-user cap', async () => {
      const [ann, bob] = [user('ann'), user('bob')];
      const again = randomUUID();
      const added = await presence.addMany(
        [entry(ann), entry(bob, again), entry(ann), entry(ann), entry(bob, again)],
        30_000,
        2,
      );
      // ann's third is over the cap of 2; bob's second is the same connection written again.
      expect(added).toEqual([true, true, true, false, true]);
      expect(Object.keys(await redis.hgetall(`${prefix}:user:${ann}`))).toHaveLength(2);
      expect(await redis.hgetall(`${prefix}:user:${bob}`)).toEqual({ [again]: 'setup-r1' });
      expect(await redis.hlen(`${prefix}:conns:setup-r1`)).toBe(3);
      expect(await redis.pttl(`${prefix}:conns:setup-r1`)).toBeGreaterThan(0);
    });
  });

  describe('PresenceRepository.removeMany', () => {
    it('removes the entries of connections closed together in one step, and only those', async () => {
      const [ann, bob] = [user('ann'), user('bob')];
      const [annGone, annStays, bobGone] = [entry(ann), entry(ann), entry(bob)];
      await presence.addMany([annGone, annStays, bobGone], 30_000, 5);
      const before = await redis.hlen(`${prefix}:conns:setup-r1`);

      await presence.removeMany('setup-r1', [annGone, bobGone]);

      expect(Object.keys(await redis.hgetall(`${prefix}:user:${ann}`))).toEqual([annStays.connectionId]);
      expect(await redis.exists(`${prefix}:user:${bob}`)).toBe(0);
      expect(await redis.hlen(`${prefix}:conns:setup-r1`)).toBe(before - 2);
      expect(await redis.hexists(`${prefix}:conns:setup-r1`, annStays.connectionId)).toBe(1);
      // Nothing to remove is no command at all.
      await expect(presence.removeMany('setup-r1', [])).resolves.toBeUndefined();
    });
  });

  describe('a batch that fails', () => {
    it('fails every waiter of the batch with the error, and the next batch goes on', async () => {
      const batcher = new Batcher<string, unknown>((ids) => users.arrive(ids), {
        windowMs: 0,
        maxBatch: 100,
        maxInFlight: 1,
      });
      // A NUL byte is no text PostgreSQL stores: the statement fails for the whole batch.
      const results = await Promise.allSettled([user('a'), 'bad\u0000id', user('b')].map((id) => batcher.add(id)));
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      const later = user('later');
      await batcher.add(later);
      expect(await db.query(`SELECT id FROM users WHERE id = $1`, [later])).toHaveLength(1);
    });
  });
});

/** Connection setup in the app (in-process): what arrives together is set up together, each with its own result. */
describe('Connection setup in batches (in-process)', () => {
  let herald: InProcessHerald;
  let redis: Redis;
  const clients: TestClient[] = [];
  const connect = async (userId: string) => {
    const client = await TestClient.connect(herald.ws, userToken(userId));
    clients.push(client);
    return client;
  };
  /** The user's presence entries: written at setup before the user record, removed at close. */
  const entries = (userId: string) => redis.hlen(`${herald.redisPrefix}:user:${userId}`);

  beforeAll(async () => {
    herald = await InProcessHerald.start('setupbatch', { HERALD_MAX_CONNECTIONS_PER_USER: '2' });
    redis = testRedisClient();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    redis?.disconnect();
    await herald?.stop();
  });

  it('welcomes connections arriving together, replays to those with something pending and refuses one over the per-user cap', async () => {
    const [waiting, quiet, twice] = [user('waiting'), user('quiet'), user('twice')];
    const { id } = await publish(herald.http, { to: { users: [waiting] }, event: 'missed' });

    const settled = await Promise.allSettled([waiting, quiet, twice, twice, twice].map((u) => connect(u)));

    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(4);
    const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect(String(refused[0]!.reason)).toContain('1008');
    const byUser = new Map(clients.map((c) => [c.frames[0]!.type === 'welcome' ? c.frames[0]!.userId : '', c]));
    const [frame] = await byUser.get(waiting)!.notification(id);
    expect(frame!.attempt).toBe(1);
    expect(byUser.get(quiet)!.notifications()).toEqual([]);
    // No subscription per user (ADR 0019): the replica holds its own channel and the broadcast channel only.
    expect(((await redis.pubsub('CHANNELS', `${herald.redisPrefix}:*`)) as string[]).sort()).toEqual(
      [`${herald.redisPrefix}:broadcast`, `${herald.redisPrefix}:r:${herald.id}`].sort(),
    );
    expect(Object.values(await redis.hgetall(`${herald.redisPrefix}:user:${twice}`))).toEqual([herald.id, herald.id]);
  });

  it('closes every connection of a batch whose write failed with 1013, and leaves no presence behind', async () => {
    const [filler, doomed] = [user('filler'), user('doomed')];
    const others = [user('x'), user('y'), user('z')];
    const batch = [doomed, ...others];
    // PostgreSQL refuses this one user: the one statement of a batch that holds it fails for all of it.
    await herald.db.query(`ALTER TABLE users ADD CONSTRAINT setup_test_refuses CHECK (id <> '${doomed}')`);
    // The users table locked: the first connection's batch waits in PostgreSQL (one batch in flight), so the
    // next four gather into one batch behind it.
    const lock = new Client({ connectionString: herald.db.url });
    await lock.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE');
      const fillers = [connect(filler)];
      await waitFor('the first batch to wait on the lock', async () => {
        const [row] = await herald.db.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return Number(row!.n) === 1;
      });
      const settling = Promise.allSettled(batch.map((u) => connect(u)));
      // Each is in presence (the step before the user record) and waits for its batch.
      for (const u of batch) await waitFor(`${u} to be in presence`, async () => (await entries(u)) === 1);
      await lock.query('COMMIT');
      await Promise.all(fillers);
      const settled = await settling;
      for (const s of settled) {
        expect(s.status).toBe('rejected');
        expect(String((s as PromiseRejectedResult).reason)).toContain('1013 setup failed, reconnect');
      }
      for (const u of batch) await waitFor(`${u}'s presence to go`, async () => (await entries(u)) === 0);
    } finally {
      await lock.end();
      await herald.db.query(`ALTER TABLE users DROP CONSTRAINT setup_test_refuses`);
    }
    // The same users connect once the store takes them again.
    for (const u of batch) await connect(u);
  });

  it('releases the presence of connections closed together, and a user back at once still gets its notifications', async () => {
    const leaving = Array.from({ length: 40 }, () => user('leaving'));
    const back = leaving[0]!;
    const twice = user('twice');
    const held = await Promise.all([...leaving, twice, twice].map((u) => connect(u)));
    for (const u of leaving) expect(await entries(u)).toBe(1);
    expect(await entries(twice)).toBe(2);

    // Every connection but one of twice's closes in the same turn; back reconnects right after.
    const closing = held.slice(0, -1);
    clients.splice(0, clients.length, held[held.length - 1]!);
    await Promise.all(closing.map((c) => c.close()));
    const again = await connect(back);

    for (const u of leaving.slice(1)) {
      await waitFor(`${u}'s presence to go`, async () => (await redis.exists(`${herald.redisPrefix}:user:${u}`)) === 0);
    }
    // twice keeps one connection, and back its new one: those entries stay.
    expect(await entries(twice)).toBe(1);
    await waitFor('back to be in presence once', async () => (await entries(back)) === 1);
    const { id } = await publish(herald.http, { to: { users: [back, twice] }, event: 'after.close' });
    await again.notification(id);
    await held[held.length - 1]!.notification(id);
  });
});
