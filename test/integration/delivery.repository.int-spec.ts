import { randomUUID } from 'node:crypto';
import { DataSource, QueryFailedError } from 'typeorm';
import {
  ACK_SESSION_OPTIONS,
  createDataSource,
  MIGRATIONS,
  runMigrations,
} from '../../apps/herald/src/database/data-source';
import { DeliveryRepository } from '../../apps/herald/src/record/delivery.repository';
import { NotificationRepository } from '../../apps/herald/src/record/notification.repository';
import { RedeliveryRepository } from '../../apps/herald/src/record/redelivery.repository';
import { ReplayRepository } from '../../apps/herald/src/record/replay.repository';
import { prepared } from '../../apps/herald/src/record/sql';
import { UserRepository } from '../../apps/herald/src/record/user.repository';
import { createTestDatabase, TestDatabase } from '../helpers/database';

/** The repositories against real PostgreSQL with the migrations applied. */
describe('Delivery repositories', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  /** The ack pool, as a replica builds it: acks and sent-marks go through it. */
  let ackSource: DataSource;
  let notifications: NotificationRepository;
  let deliveries: DeliveryRepository;
  let replays: ReplayRepository;
  let redelivery: RedeliveryRepository;
  let users: UserRepository;
  const soon = () => new Date(Date.now() + 60_000);

  const publishTo = async (userIds: string[], ttlSeconds = 60, key: string | null = null) =>
    notifications.create(
      {
        id: randomUUID(),
        publisherId: 'pk_test',
        idempotencyKey: key,
        requestHash: 'h',
        audience: { users: userIds },
        event: 'test.event',
        payload: { ok: true },
        ttlSeconds,
      },
      soon(),
    );
  /** Three notifications to one user, published one after another (so in seq order). */
  const publishThree = async (userId: string) => {
    const first = (await publishTo([userId])).notification;
    const second = (await publishTo([userId])).notification;
    return [first, second, (await publishTo([userId])).notification] as const;
  };

  beforeAll(async () => {
    db = await createTestDatabase('repo');
    dataSource = createDataSource(db.url, 'herald-int-test');
    await dataSource.initialize();
    // Concurrent migration runs (as replicas starting together) must be safe.
    const second = createDataSource(db.url, 'herald-int-test-2');
    await second.initialize();
    const applied = await Promise.all([runMigrations(dataSource), runMigrations(second)]);
    await second.destroy();
    // Every migration applied exactly once between the two runs.
    expect(applied.flat()).toEqual(MIGRATIONS.map((m) => m.name));
    notifications = new NotificationRepository(dataSource);
    ackSource = createDataSource(db.url, 'herald-int-acks', { max: 4, sessionOptions: ACK_SESSION_OPTIONS });
    await ackSource.initialize();
    deliveries = new DeliveryRepository(ackSource);
    replays = new ReplayRepository(dataSource);
    redelivery = new RedeliveryRepository(dataSource);
    users = new UserRepository(dataSource);
  });

  afterAll(async () => {
    await ackSource?.destroy();
    await dataSource?.destroy();
    await db?.drop();
  });

  it('stores a notification with one pending delivery per recipient', async () => {
    const created = await publishTo(['a1', 'a2']);
    expect(created).toMatchObject({ created: true, recipients: 2 });
    const rows = await db.query<{ user_id: string; status: string; attempts: number }>(
      'SELECT user_id, status, attempts FROM deliveries WHERE notification_id = $1 ORDER BY user_id',
      [created.notification.id],
    );
    expect(rows).toEqual([
      { user_id: 'a1', status: 'pending', attempts: 0 },
      { user_id: 'a2', status: 'pending', attempts: 0 },
    ]);
  });

  it('returns the earlier notification for a reused idempotency key, storing nothing new', async () => {
    const first = await publishTo(['k1'], 60, 'same-key');
    const again = await publishTo(['k1', 'k2'], 60, 'same-key');
    expect(again).toMatchObject({ created: false, recipients: 1 });
    expect(again.notification.id).toBe(first.notification.id);
  });

  it('stores many user-list publishes in one statement, in order, each with its own deliveries', async () => {
    const input = (users: string[], key: string | null) => ({
      id: randomUUID(),
      publisherId: 'pk_test',
      idempotencyKey: key,
      requestHash: `h-${key ?? users.join()}`,
      audience: { users },
      event: 'batch.event',
      payload: { users },
      ttlSeconds: 60,
    });
    const earlier = await publishTo(['b9'], 60, 'batch-earlier');
    const inputs = [
      input(['b1'], null),
      input(['b2', 'b3'], 'batch-key'),
      input(['b4'], 'batch-key'), // the same key again within the batch: answered by the first
      input(['b5'], 'batch-earlier'), // a key used before the batch
      input(['b1'], null),
    ];
    const results = await notifications.createForUsers(inputs, soon());
    expect(results.map((r) => [r.created, r.recipients])).toEqual([
      [true, 1],
      [true, 2],
      [false, 2],
      [false, 1],
      [true, 1],
    ]);
    expect(results[2]!.notification.id).toBe(inputs[1]!.id);
    expect(results[2]!.requestHash).toBe('h-batch-key');
    expect(results[3]!.notification.id).toBe(earlier.notification.id);
    // seq follows the order of the batch
    const seqs = [results[0]!, results[1]!, results[4]!].map((r) => r.notification.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    const rows = await db.query<{ notification_id: string; user_id: string }>(
      `SELECT notification_id::text, user_id FROM deliveries WHERE notification_id = ANY($1::uuid[])
        ORDER BY user_id, notification_id`,
      [inputs.map((i) => i.id)],
    );
    expect(rows).toEqual(
      [
        { notification_id: inputs[0]!.id, user_id: 'b1' },
        { notification_id: inputs[4]!.id, user_id: 'b1' },
        { notification_id: inputs[1]!.id, user_id: 'b2' },
        { notification_id: inputs[1]!.id, user_id: 'b3' },
      ].sort((a, b) => (a.user_id + a.notification_id < b.user_id + b.notification_id ? -1 : 1)),
    );
    const known = await db.query<{ id: string }>("SELECT id FROM users WHERE id IN ('b1', 'b2', 'b3', 'b4', 'b5')");
    // Every addressed user is known from then on (the audience of { all: true }), as with one publish.
    expect(known.map((u) => u.id).sort()).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
  });

  it('refuses a whole batch when one item is refused by the store, storing none of it', async () => {
    const good = randomUUID();
    const bad = randomUUID();
    const base = { publisherId: 'pk_test', idempotencyKey: null, requestHash: 'h', event: 'e', ttlSeconds: 60 };
    await expect(
      notifications.createForUsers(
        [
          { ...base, id: good, audience: { users: ['c1'] }, payload: { ok: true } },
          // PostgreSQL's jsonb has no NUL character: a data exception (22P05)
          { ...base, id: bad, audience: { users: ['c2'] }, payload: { text: 'a\u0000b' } },
        ],
        soon(),
      ),
    ).rejects.toMatchObject({ code: '22P05' });
    const stored = await db.query('SELECT id FROM notifications WHERE id = ANY($1::uuid[])', [[good, bad]]);
    expect(stored).toEqual([]);
  });

  it('stores topic and everyone publishes together, each with its own audience, in one commit; refused whole when one is refused', async () => {
    await users.subscribe('g1', 'group-news', 10);
    await users.subscribe('g2', 'group-news', 10);
    const knownUsers = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM users'))[0]!.n);
    const base = { publisherId: 'pk_group', requestHash: 'h', event: 'e', payload: {}, ttlSeconds: 60 };
    const [topic, everyone, keyed, again] = await notifications.createMany(
      [
        { ...base, id: randomUUID(), idempotencyKey: null, audience: { topic: 'group-news' } },
        { ...base, id: randomUUID(), idempotencyKey: null, audience: { all: true } },
        { ...base, id: randomUUID(), idempotencyKey: 'group-key', audience: { topic: 'group-news' } },
        { ...base, id: randomUUID(), idempotencyKey: 'group-key', audience: { topic: 'group-news' } },
      ],
      soon(),
    );
    expect([topic!.recipients, everyone!.recipients, keyed!.recipients]).toEqual([2, knownUsers, 2]);
    expect(topic!.notification.seq).toBeLessThan(everyone!.notification.seq);
    // The same key later in the same group: the earlier notification, nothing new stored.
    expect(again).toMatchObject({ created: false });
    expect(again!.notification.id).toBe(keyed!.notification.id);
    // Recorded on their streams (ADR 0007): one row each, no delivery row, every recipient pending.
    const rows = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM deliveries WHERE notification_id = ANY($1::uuid[])',
      [[topic!.notification.id, everyone!.notification.id]],
    );
    expect(Number(rows[0]!.n)).toBe(0);
    expect(await notifications.countDeliveries(everyone!.notification.id)).toMatchObject({ pending: knownUsers });
    expect([topic!.notification.stream!.offset + 1]).toEqual([keyed!.notification.stream!.offset]);
    const heads = async () =>
      (await db.query<{ head: string }>('SELECT head FROM streams ORDER BY id')).map((r) => r.head);
    const headsBefore = await heads();

    const good = randomUUID();
    await expect(
      notifications.createMany(
        [
          { ...base, id: good, idempotencyKey: null, audience: { topic: 'group-news' } },
          { ...base, id: randomUUID(), idempotencyKey: null, audience: { all: true }, payload: { text: 'a\u0000b' } },
        ],
        soon(),
      ),
    ).rejects.toMatchObject({ code: '22P05' });
    expect(await db.query('SELECT id FROM notifications WHERE id = $1', [good])).toEqual([]);
    // The refused group's offsets were given back with it: the streams stay gapless.
    expect(await heads()).toEqual(headsBefore);
  });

  it('counts a send once when two replicas record the same attempt', async () => {
    const { notification } = await publishTo(['m1']);
    const [one, two] = await Promise.all([
      deliveries.markSent(notification.id, ['m1'], 1, soon()),
      deliveries.markSent(notification.id, ['m1'], 1, soon()),
    ]);
    expect([...one, ...two].filter((d) => d.counted)).toHaveLength(1);
    expect([...one, ...two].every((d) => d.userId === 'm1' && d.attempt === 1)).toBe(true);
    expect(await deliveries.markSent(notification.id, ['m1', 'not-a-recipient'], 2, soon())).toEqual([
      { userId: 'm1', attempt: 2, counted: true },
    ]);
  });

  it('records many single-user sends in one statement, counting each attempt once', async () => {
    const a = await publishTo(['s1']);
    const b = await publishTo(['s2']);
    const acked = await publishTo(['s3']);
    await deliveries.ack(acked.notification.id, 's3');
    const send = (n: typeof a, userId: string, attempt: number) => ({
      notificationId: n.notification.id,
      userId,
      attempt,
      nextAttemptAt: soon(),
    });
    const first = await deliveries.markSentMany([
      send(a, 's1', 1),
      send(b, 's2', 1),
      send(b, 's2', 1), // the same send twice in one batch
      send(acked, 's3', 1), // acked already: not open
      send(a, 'nobody', 1), // no such delivery
    ]);
    expect(first).toEqual([
      { userId: 's1', attempt: 1, counted: true },
      { userId: 's2', attempt: 1, counted: true },
      { userId: 's2', attempt: 1, counted: false },
      null,
      null,
    ]);
    // A stale attempt changes nothing and is not counted; the next one is.
    const again = await deliveries.markSentMany([send(a, 's1', 1), send(b, 's2', 2)]);
    expect(again).toEqual([
      { userId: 's1', attempt: 1, counted: false },
      { userId: 's2', attempt: 2, counted: true },
    ]);
    const rows = await db.query<{ user_id: string; status: string; attempts: number }>(
      `SELECT user_id, status, attempts FROM deliveries WHERE user_id IN ('s1', 's2', 's3') ORDER BY user_id`,
    );
    expect(rows).toEqual([
      { user_id: 's1', status: 'sent', attempts: 1 },
      { user_id: 's2', status: 'sent', attempts: 2 },
      // Acked while pending: its ack recorded the live send that reached it (see the next test).
      { user_id: 's3', status: 'acked', attempts: 1 },
    ]);
  });

  it('records a live first send with its ack when the ack comes before the sent-mark, which then writes nothing', async () => {
    const { notification } = await publishTo(['lz1']);
    // The row's last write before the send: here the publish's insert.
    const [created] = await db.query<{ updated_at: Date }>(
      `SELECT updated_at FROM deliveries WHERE notification_id = $1`,
      [notification.id],
    );
    // The frame left unrecorded (DeliveryService.sendThenRecord) and the ack came first.
    expect(await deliveries.ackMany([{ notificationId: notification.id, userId: 'lz1' }])).toEqual([
      expect.objectContaining({ outcome: 'acked', changed: true }),
    ]);
    const late = await deliveries.markSentMany([
      { notificationId: notification.id, userId: 'lz1', attempt: 1, nextAttemptAt: soon() },
    ]);
    expect(late).toEqual([null]);
    const [row] = await db.query<{
      status: string;
      attempts: number;
      first_sent_at: Date;
      last_sent_at: Date;
      next_attempt_at: Date | null;
    }>(
      `SELECT status, attempts, first_sent_at, last_sent_at, next_attempt_at FROM deliveries
        WHERE notification_id = $1`,
      [notification.id],
    );
    expect(row).toEqual({
      status: 'acked',
      attempts: 1,
      first_sent_at: created!.updated_at,
      last_sent_at: created!.updated_at,
      next_attempt_at: null,
    });
    // Recorded first, then acked: the ack adds no attempt.
    const other = (await publishTo(['lz2'])).notification;
    await deliveries.markSentMany([{ notificationId: other.id, userId: 'lz2', attempt: 1, nextAttemptAt: soon() }]);
    await deliveries.ack(other.id, 'lz2');
    expect(await db.query(`SELECT status, attempts FROM deliveries WHERE notification_id = $1`, [other.id])).toEqual([
      { status: 'acked', attempts: 1 },
    ]);
  });

  it('acks only the own delivery, once, and tells duplicates and strangers apart', async () => {
    const { notification } = await publishTo(['o1']);
    expect((await deliveries.ack(notification.id, 'someone-else')).outcome).toBe('unknown');
    expect((await deliveries.ack(notification.id, 'o1')).outcome).toBe('acked');
    expect((await deliveries.ack(notification.id, 'o1')).outcome).toBe('duplicate');
    expect(await deliveries.markSent(notification.id, ['o1'], 5, soon())).toEqual([]);
  });

  it('answers concurrent acks of one delivery with one ok and duplicates, never unknown', async () => {
    for (let round = 0; round < 20; round++) {
      const { notification } = await publishTo(['c1']);
      await deliveries.markSent(notification.id, ['c1'], 1, soon());
      const results = await Promise.all([1, 2, 3].map(() => deliveries.ack(notification.id, 'c1')));
      expect(results.map((r) => r.outcome).sort()).toEqual(['acked', 'duplicate', 'duplicate']);
      // Exactly one of them changed the delivery, and it knows how long since publish.
      const changed = results.filter((r) => r.changed);
      expect(changed).toHaveLength(1);
      expect(changed[0]!.sincePublishMs).toBeGreaterThanOrEqual(0);
    }
  });

  const deliveryRow = async (notificationId: string, userId: string) =>
    (
      await db.query<{
        status: string;
        attempts: number;
        due: boolean | null;
        first_sent_at: Date | null;
        last_sent_at: Date | null;
      }>(
        `SELECT status, attempts, next_attempt_at <= now() AS due, first_sent_at, last_sent_at
           FROM deliveries WHERE notification_id = $1 AND user_id = $2`,
        [notificationId, userId],
      )
    )[0]!;
  const replayChecksOf = (userId: string) =>
    db.query<{ after_seq: string; through_seq: string; sent_at: Date }>(
      'SELECT after_seq, through_seq, sent_at FROM replay_checks WHERE user_id = $1 ORDER BY through_seq',
      [userId],
    );

  it('reads a replay in seq order, in batches, recording each batch once and no delivery', async () => {
    const published = [];
    for (let i = 0; i < 5; i++) published.push((await publishTo(['r1'])).notification);
    const ids = published.map((n) => n.id);
    await deliveries.ack(ids[2]!, 'r1');
    const firstBatch = await replays.replayBatch('r1', 0, 3, soon());
    expect(firstBatch.map((d) => d.notification.id)).toEqual([ids[0], ids[1], ids[3]]);
    // As frames carry it: the time formatted by PostgreSQL is the one a live send formats.
    expect(firstBatch[0]!.notification).toEqual({
      id: ids[0],
      seq: published[0]!.seq,
      event: 'test.event',
      payload: { ok: true },
      topic: null,
      createdAt: published[0]!.createdAt.toISOString(),
    });
    const rest = await replays.replayBatch('r1', firstBatch[2]!.notification.seq, 3, soon());
    expect(rest.map((d) => d.notification.id)).toEqual([ids[4]]);
    expect(rest[0]!.attempt).toBe(1);
    expect(await replays.replayBatch('r1', rest[0]!.notification.seq, 3, soon())).toEqual([]);
    // The deliveries are as they were; the two batches are recorded, the empty read is not.
    expect(await deliveryRow(ids[0]!, 'r1')).toMatchObject({ status: 'pending', attempts: 0, first_sent_at: null });
    const checks = await replayChecksOf('r1');
    expect(checks.map((c) => [Number(c.after_seq), Number(c.through_seq)])).toEqual([
      [0, firstBatch[2]!.notification.seq],
      [firstBatch[2]!.notification.seq, rest[0]!.notification.seq],
    ]);
  });

  it('records a replayed send with its ack: one more attempt, at the time of the replay', async () => {
    const fresh = (await publishTo(['ra1'])).notification;
    const parked = (await publishTo(['ra1'])).notification;
    await deliveries.markSent(parked.id, ['ra1'], 1, soon());
    await redelivery.park(parked.id, 'ra1', 1);
    const batch = await replays.replayBatch('ra1', 0, 10, soon());
    expect(batch.map((d) => [d.notification.id, d.attempt])).toEqual([
      [fresh.id, 1],
      [parked.id, 2],
    ]);
    const [check] = await replayChecksOf('ra1');
    // A redelivery job of the earlier send finds that a replay sent it since: that send's check decides.
    expect(await redelivery.findOpen(parked.id, 'ra1')).toMatchObject({ attempts: 1, replayedSince: true });
    const other = (await publishTo(['ra2'])).notification;
    await deliveries.markSent(other.id, ['ra2'], 1, soon());
    expect(await redelivery.findOpen(other.id, 'ra2')).toMatchObject({ attempts: 1, replayedSince: false });
    const [a, b] = await deliveries.ackMany([
      { notificationId: fresh.id, userId: 'ra1' },
      { notificationId: parked.id, userId: 'ra1' },
    ]);
    expect(a).toMatchObject({ outcome: 'acked', changed: true });
    expect(a!.sinceSentMs).toBeGreaterThanOrEqual(0);
    expect(b).toMatchObject({ outcome: 'acked', changed: true });
    expect(await deliveryRow(fresh.id, 'ra1')).toMatchObject({
      status: 'acked',
      attempts: 1,
      first_sent_at: check!.sent_at,
      last_sent_at: check!.sent_at,
    });
    const second = await deliveryRow(parked.id, 'ra1');
    expect(second).toMatchObject({ status: 'acked', attempts: 2, last_sent_at: check!.sent_at });
    expect(second.first_sent_at!.getTime()).toBeLessThanOrEqual(check!.sent_at.getTime());
    // One at a time records it the same way.
    const third = (await publishTo(['ra1'])).notification;
    await replays.replayBatch('ra1', 0, 10, soon());
    expect((await deliveries.ack(third.id, 'ra1')).outcome).toBe('acked');
    expect(await deliveryRow(third.id, 'ra1')).toMatchObject({ status: 'acked', attempts: 1 });
  });

  it('settles a replay at its check time: what is unacked goes on the clock, the acked and the re-sent stay', async () => {
    const [acked, resent, unacked] = await publishThree('rc1');
    await replays.replayBatch('rc1', 0, 10, new Date(Date.now() + 60_000));
    expect(await redelivery.settleReplayChecks(100)).toMatchObject({ notificationIds: [] });
    expect(await replayChecksOf('rc1')).toHaveLength(1);
    await deliveries.ack(acked.id, 'rc1');
    // A later send (a redelivery) was recorded: it is on its own clock already.
    await db.query(`UPDATE replay_checks SET sent_at = sent_at - interval '1 second' WHERE user_id = 'rc1'`);
    await deliveries.markSent(resent.id, ['rc1'], 1, soon());
    await db.query(`UPDATE replay_checks SET check_at = now() - interval '1 second' WHERE user_id = 'rc1'`);
    const [check] = await replayChecksOf('rc1');

    expect(await redelivery.settleReplayChecks(100)).toEqual({
      checks: 1,
      notificationIds: [unacked.id],
      handedOff: 0,
    });
    expect(await deliveryRow(unacked.id, 'rc1')).toMatchObject({
      status: 'sent',
      attempts: 1,
      due: true,
      first_sent_at: check!.sent_at,
    });
    expect(await deliveryRow(resent.id, 'rc1')).toMatchObject({ status: 'sent', attempts: 1, due: false });
    expect(await deliveryRow(acked.id, 'rc1')).toMatchObject({ status: 'acked', attempts: 1 });
    expect(await replayChecksOf('rc1')).toEqual([]);
    expect(await redelivery.settleReplayChecks(100)).toEqual({ checks: 0, notificationIds: [], handedOff: 0 });
  });

  it('skips on a resumed stream what an earlier replay sent it, and replays what it never got', async () => {
    const replayed = (await publishTo(['rr1'])).notification;
    await replays.replayBatch('rr1', 0, 10, soon());
    const never = (await publishTo(['rr1'])).notification;
    const resumed = await replays.replayBatch('rr1', 0, 10, soon(), never.seq);
    // `never` is at or below the resume point too, but no replay sent it: it goes out.
    expect(resumed.map((d) => d.notification.id)).toEqual([never.id]);
    expect(replayed.seq).toBeLessThan(never.seq);
  });

  it('counts no replayed send for the sent rows a resumed stream skipped, at the ack or at the check', async () => {
    const [had, missed, later] = await publishThree('rs1');
    await deliveries.markSent(had.id, ['rs1'], 1, soon());
    await redelivery.park(had.id, 'rs1', 1);
    // The stream resumes after `had`: it is skipped, the others are replayed.
    const batch = await replays.replayBatch('rs1', 0, 10, soon(), had.seq);
    expect(batch.map((d) => d.notification.id)).toEqual([missed.id, later.id]);
    expect((await deliveries.ack(had.id, 'rs1')).outcome).toBe('acked');
    expect(await deliveryRow(had.id, 'rs1')).toMatchObject({ status: 'acked', attempts: 1 });
    await db.query(`UPDATE replay_checks SET check_at = now() - interval '1 second' WHERE user_id = 'rs1'`);
    await deliveries.ack(missed.id, 'rs1');
    expect(await redelivery.settleReplayChecks(100)).toEqual({ checks: 1, notificationIds: [later.id], handedOff: 0 });
    expect(await deliveryRow(missed.id, 'rs1')).toMatchObject({ status: 'acked', attempts: 1 });
  });

  it('answers a batch of acks it could not apply from one read: duplicate, expired, unknown', async () => {
    const [done, fresh, lapsed] = await publishThree('am1');
    await deliveries.ack(done.id, 'am1');
    await db.query(`UPDATE deliveries SET status = 'expired' WHERE notification_id = $1`, [lapsed.id]);
    const results = await deliveries.ackMany([
      { notificationId: done.id, userId: 'am1' },
      { notificationId: fresh.id, userId: 'am1' },
      { notificationId: lapsed.id, userId: 'am1' },
      { notificationId: randomUUID(), userId: 'am1' },
      { notificationId: fresh.id, userId: 'someone-else' },
      { notificationId: fresh.id, userId: 'am1' },
    ]);
    expect(results.map((r) => [r.outcome, r.changed])).toEqual([
      ['duplicate', false],
      ['acked', true],
      ['expired', false],
      ['unknown', false],
      ['unknown', false],
      ['duplicate', false],
    ]);
  });

  it('fails a delivery only at the attempt it expects, and parks only at that attempt', async () => {
    const { notification } = await publishTo(['f1']);
    await deliveries.markSent(notification.id, ['f1'], 1, soon());
    await deliveries.markSent(notification.id, ['f1'], 2, soon());
    expect(await redelivery.markFailed(notification.id, 'f1', 1)).toBe(false);
    await redelivery.park(notification.id, 'f1', 1);
    expect(
      (await db.query('SELECT next_attempt_at FROM deliveries WHERE notification_id = $1', [notification.id]))[0]!
        .next_attempt_at,
    ).not.toBeNull();
    expect(await redelivery.markFailed(notification.id, 'f1', 2)).toBe(true);
    expect((await deliveries.ack(notification.id, 'f1')).outcome).toBe('acked');
  });

  it('parks many deliveries in one statement, each only at the attempt it was read at', async () => {
    const a = (await publishTo(['p1', 'p2'])).notification;
    await deliveries.markSent(a.id, ['p2'], 1, soon());
    const parked = await redelivery.parkMany([
      { notificationId: a.id, userId: 'p1', attempts: 0 },
      { notificationId: a.id, userId: 'p2', attempts: 0 },
    ]);
    expect(parked).toBe(1);
    const rows = await db.query<{ user_id: string; parked: boolean }>(
      'SELECT user_id, next_attempt_at IS NULL AS parked FROM deliveries WHERE notification_id = $1 ORDER BY user_id',
      [a.id],
    );
    expect(rows).toEqual([
      { user_id: 'p1', parked: true },
      { user_id: 'p2', parked: false },
    ]);
  });

  it('expires open deliveries past their TTL and never replays them', async () => {
    const { notification } = await publishTo(['e1'], 1);
    await db.query(`UPDATE deliveries SET expires_at = now() - interval '1 second' WHERE notification_id = $1`, [
      notification.id,
    ]);
    expect(await replays.replayBatch('e1', 0, 10, soon())).toEqual([]);
    expect(await replayChecksOf('e1')).toEqual([]);
    expect((await redelivery.expireDue(100)).length).toBeGreaterThanOrEqual(1);
    // The sweep made it expired: the ack changes nothing, so the expiry is not counted twice.
    expect(await deliveries.ack(notification.id, 'e1')).toEqual({ outcome: 'expired', changed: false });
  });

  it('answers an ack that comes after the TTL with expired, even before the sweep ran', async () => {
    const { notification } = await publishTo(['late1']);
    await deliveries.markSent(notification.id, ['late1'], 1, soon());
    await db.query(`UPDATE deliveries SET expires_at = now() - interval '1 second' WHERE notification_id = $1`, [
      notification.id,
    ]);
    // This ack is what makes it expired.
    expect(await deliveries.ack(notification.id, 'late1')).toEqual({ outcome: 'expired', changed: true });
    const [row] = await db.query<{ status: string; acked_at: Date | null }>(
      'SELECT status, acked_at FROM deliveries WHERE notification_id = $1',
      [notification.id],
    );
    expect(row).toEqual({ status: 'expired', acked_at: null });
  });

  it('finds deliveries whose next attempt is overdue', async () => {
    const { notification } = await publishTo(['d1']);
    await db.query(`UPDATE deliveries SET next_attempt_at = now() - interval '1 second' WHERE notification_id = $1`, [
      notification.id,
    ]);
    const due = await redelivery.findDue(1000);
    expect(due).toContainEqual({ notificationId: notification.id, userId: 'd1', status: 'pending', attempts: 0 });
  });

  it('keeps topic subscriptions per user, and fans a topic out to them', async () => {
    expect(await users.subscribe('t1', 'sports', 10)).toBe('added');
    expect(await users.subscribe('t1', 'sports', 10)).toBe('exists');
    expect(await users.subscribe('t2', 'sports', 10)).toBe('added');
    expect(await users.subscribe('t2', 'chess', 2)).toBe('added');
    expect(await users.subscribe('t2', 'go', 2)).toBe('limit');
    expect(await users.subscribe('t2', 'chess', 2)).toBe('exists');
    expect(await users.topicsOf('t1')).toEqual(['sports']);
    const created = await notifications.create(
      {
        id: randomUUID(),
        publisherId: 'pk',
        idempotencyKey: null,
        requestHash: 'h',
        audience: { topic: 'sports' },
        event: 'goal',
        payload: {},
        ttlSeconds: 60,
      },
      soon(),
    );
    expect(created.recipients).toBe(2);
    await users.unsubscribe('t2', 'chess');
    expect(await users.unsubscribe('t2', 'sports')).toBe(true);
    expect(await users.unsubscribe('t2', 'sports')).toBe(false);
  });

  it('runs hot statements prepared: parsed once per connection, with PostgreSQL errors as query errors', async () => {
    const single = createDataSource(db.url, 'herald-int-prepared');
    single.setOptions({ extra: { max: 1 } });
    await single.initialize();
    try {
      const text = 'SELECT $1::int + 1 AS v';
      for (let i = 0; i < 3; i++) expect(await prepared<{ v: number }>(single, text, [i])).toEqual([{ v: i + 1 }]);
      // One connection: it holds the statement once, under its name, however often it ran.
      const held = await prepared<{ name: string }>(
        single,
        'SELECT name FROM pg_prepared_statements WHERE statement = $1',
        [text],
      );
      expect(held).toHaveLength(1);
      expect(held[0]!.name).toMatch(/^herald_\d+$/);
      const failure = await prepared(single, 'SELECT 1 / $1::int', [0]).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(QueryFailedError);
      expect(failure).toMatchObject({ code: '22012' });
    } finally {
      await single.destroy();
    }
  });

  it('writes acks through a pool with asynchronous commits, where each statement is planned once, not per run', async () => {
    const single = createDataSource(db.url, 'herald-int-ack-plans', { max: 1, sessionOptions: ACK_SESSION_OPTIONS });
    await single.initialize();
    try {
      expect(await single.query('SHOW synchronous_commit')).toEqual([{ synchronous_commit: 'off' }]);
      // The main pool keeps synchronous commits.
      expect(await dataSource.query('SHOW synchronous_commit')).toEqual([{ synchronous_commit: 'on' }]);
      const acks = new DeliveryRepository(single);
      for (let i = 0; i < 7; i++) {
        const [a, b] = [(await publishTo(['plan1'])).notification, (await publishTo(['plan1'])).notification];
        const results = await acks.ackMany([
          { notificationId: a.id, userId: 'plan1' },
          { notificationId: b.id, userId: 'plan1' },
        ]);
        expect(results.map((r) => r.outcome)).toEqual(['acked', 'acked']);
      }
      // Under PostgreSQL's default (plan_cache_mode auto) the array-keyed ack was custom-planned on every run.
      const plans = await single.query<{ generic_plans: string; custom_plans: string }>(
        `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%unnest($1::uuid[], $2::text[]) AS a(notification_id, user_id),%FOR UPDATE%'`,
      );
      expect(plans).toEqual([{ generic_plans: '7', custom_plans: '0' }]);
    } finally {
      await single.destroy();
    }
  });
});
