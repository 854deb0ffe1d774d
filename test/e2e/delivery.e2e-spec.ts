import { randomUUID } from 'node:crypto';
import type { ErrorFrame } from '@herald/protocol';
import { getNotification, publish, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { TEST_REDIS_URL } from '../helpers/env';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/** Delivery semantics across two replica processes sharing PostgreSQL and Redis. */
describe('Delivery across two replicas', () => {
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const r1 = () => cluster.replicas[0]!;
  const r2 = () => cluster.replicas[1]!;
  const connect = async (replicaUrl: string, userId: string, options?: Parameters<typeof TestClient.connect>[2]) => {
    const client = await TestClient.connect(replicaUrl, userToken(userId), options);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    cluster = await TestCluster.start('delivery');
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('delivers a publish taken by replica 2 to a user on replica 1, and records the ack', async () => {
    const alice = user('alice');
    const client = await connect(r1().ws, alice);
    const published = await publish(r2().http, {
      to: { users: [alice] },
      event: 'order.shipped',
      payload: { order: 42 },
    });
    expect(published.recipients).toBe(1);

    const [frame] = await client.notification(published.id);
    expect(frame).toMatchObject({
      type: 'notification',
      id: published.id,
      seq: published.seq,
      event: 'order.shipped',
      payload: { order: 42 },
      attempt: 1,
    });
    expect(new Date(frame!.timestamp).getTime()).not.toBeNaN();

    expect(await client.ack(published.id)).toEqual({ type: 'ack', id: published.id, status: 'ok' });
    expect(await cluster.deliveryOf(published.id, alice)).toEqual({ status: 'acked', attempts: 1 });
    const view = await getNotification(r1().http, published.id);
    expect(view.counts).toEqual({ pending: 0, sent: 0, acked: 1, expired: 0, failed: 0 });
    expect(view.deliveries.items[0]).toMatchObject({ userId: alice, status: 'acked', attempts: 1 });
    expect(await client.ack(published.id)).toEqual({ type: 'ack', id: published.id, status: 'duplicate' });
  });

  it('redelivers an unacked notification with attempts counted, then marks it failed', async () => {
    const bob = user('bob');
    const client = await connect(r1().ws, bob);
    const { id } = await publish(r2().http, { to: { users: [bob] }, event: 'reminder', payload: {} });

    const frames = await client.notification(id, 3, 15_000);
    expect(frames.map((f) => f.attempt)).toEqual([1, 2, 3]);
    await waitFor('delivery to fail', async () => (await cluster.deliveryOf(id, bob))?.status === 'failed');
    expect(await cluster.deliveryOf(id, bob)).toEqual({ status: 'failed', attempts: 3 });
    expect((await getNotification(r2().http, id)).counts.failed).toBe(1);
  });

  it('replays everything to a user who was offline, in order, on the other replica, and nothing twice after ack', async () => {
    const carol = user('carol');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await publish(r1().http, { to: { users: [carol] }, event: 'msg', payload: { i } })).id);
    }
    const first = await connect(r2().ws, carol);
    await first.notification(ids[4]!);
    const replayed = first.notifications();
    expect(replayed.map((n) => n.id)).toEqual(ids);
    const seqs = replayed.map((n) => n.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    for (const id of ids) expect(await first.ack(id)).toMatchObject({ type: 'ack', status: 'ok' });
    await first.close();

    const second = await connect(r1().ws, carol);
    const marker = await publish(r2().http, { to: { users: [carol] }, event: 'marker' });
    await second.notification(marker.id);
    expect(second.notifications().map((n) => n.id)).toEqual([marker.id]);
  });

  it('records a replayed send with its ack, and resends what a replay sent and was not acked until it fails', async () => {
    const rita = user('rita');
    const acked = await publish(r1().http, { to: { users: [rita] }, event: 'replayed.acked' });
    const ignored = await publish(r1().http, { to: { users: [rita] }, event: 'replayed.ignored' });
    const client = await connect(r2().ws, rita);
    const [first] = await client.notification(acked.id);
    expect(first!.attempt).toBe(1);
    // The replay wrote nothing per delivery; the ack records its send.
    expect(await cluster.deliveryOf(ignored.id, rita)).toEqual({ status: 'pending', attempts: 0 });
    expect(await client.ack(acked.id)).toMatchObject({ type: 'ack', status: 'ok' });
    expect(await cluster.deliveryOf(acked.id, rita)).toEqual({ status: 'acked', attempts: 1 });

    // Never acked: the sweep checks the replay's batch after the ack timeout and resends it.
    const frames = await client.notification(ignored.id, 3, 15_000);
    expect(frames.map((f) => f.attempt)).toEqual([1, 2, 3]);
    await waitFor(
      'the ignored delivery to fail',
      async () => (await cluster.deliveryOf(ignored.id, rita))?.status === 'failed',
    );
    expect(await cluster.deliveryOf(ignored.id, rita)).toEqual({ status: 'failed', attempts: 3 });
    expect(client.notifications().filter((n) => n.id === acked.id)).toHaveLength(1);
    const checks = await cluster.db.query<{ n: string }>('SELECT count(*) AS n FROM replay_checks WHERE user_id = $1', [
      rita,
    ]);
    expect(Number(checks[0]!.n)).toBe(0);
  });

  it('acks many notifications in one frame, answering each id: ok, duplicate, forbidden', async () => {
    const sam = user('sam');
    const stranger = user('stranger');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await publish(r1().http, { to: { users: [sam] }, event: 'many' })).id);
    const notMine = (await publish(r1().http, { to: { users: [stranger] }, event: 'other' })).id;
    const client = await connect(r2().ws, sam);
    await client.notification(ids[2]!);
    const from = client.frames.length;
    client.send({ type: 'acks', ids: [ids[0], ids[1]!.toUpperCase(), ids[0], notMine, 'not-an-id', ids[2]] });
    const answer = await client.next((f) => f.type === 'acks', 10_000, from);
    expect(answer).toEqual({
      type: 'acks',
      results: [
        { id: ids[0], status: 'ok' },
        { id: ids[1], status: 'ok' },
        { id: ids[0], status: 'duplicate' },
        { id: notMine, status: 'forbidden' },
        { id: 'not-an-id', status: 'forbidden' },
        { id: ids[2], status: 'ok' },
      ],
    });
    for (const id of ids) expect(await cluster.deliveryOf(id, sam)).toEqual({ status: 'acked', attempts: 1 });
    expect((await cluster.deliveryOf(notMine, stranger))?.status).toBe('pending');
    // A malformed list is refused whole, and the connection stays open.
    client.send({ type: 'acks', ids: [] });
    expect(await client.next((f) => f.type === 'error', 5000, from)).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await client.ack(ids[0]!)).toMatchObject({ type: 'ack', status: 'duplicate' });
  });

  it('replays a backlog larger than one batch completely, in seq order', async () => {
    const vera = user('vera');
    const published: number[] = [];
    for (let chunk = 0; chunk < 22; chunk++) {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          publish((i % 2 === 0 ? r1() : r2()).http, {
            to: { users: [vera] },
            event: 'backlog',
            payload: { n: chunk * 50 + i },
          }),
        ),
      );
      published.push(...results.map((r) => r.seq));
    }
    const client = await connect(r2().ws, vera);
    // Unacked, so a slow replay may already see its first items redelivered: judge first arrivals (dedup by id).
    const firstArrivals = () => [...new Map(client.notifications().map((n) => [n.id, n.seq] as const)).values()];
    await waitFor('the whole backlog', () => firstArrivals().length >= 1100, 30_000);
    const seqs = firstArrivals().slice(0, 1100);
    expect(seqs).toEqual([...published].sort((a, b) => a - b));
  });

  it('sends live notifications after the replay, never before it', async () => {
    const dave = user('dave');
    const early = await publish(r1().http, { to: { users: [dave] }, event: 'early' });
    const client = await connect(r2().ws, dave);
    const live = await publish(r1().http, { to: { users: [dave] }, event: 'live' });
    await client.notification(live.id);
    expect(client.notifications().map((n) => n.id)).toEqual([early.id, live.id]);
  });

  it('records a first live send with its ack, or shortly after it left when no ack comes', async () => {
    const lena = user('lena');
    const client = await connect(r1().ws, lena);
    const acked = await publish(r2().http, { to: { users: [lena] }, event: 'acked.fast' });
    await client.notification(acked.id);
    expect(await client.ack(acked.id)).toMatchObject({ status: 'ok' });
    // The ack recorded the send with itself (or came after its record): one send, acked.
    expect(await cluster.deliveryOf(acked.id, lena)).toEqual({ status: 'acked', attempts: 1 });
    const unacked = await publish(r2().http, { to: { users: [lena] }, event: 'left.unacked' });
    await client.notification(unacked.id);
    expect(await cluster.waitRecorded(unacked.id, lena)).toEqual({ status: 'sent', attempts: 1 });
  });

  it('sends nothing for a bus message that arrives after the notification expired', async () => {
    const omar = user('omar');
    const client = await connect(r1().ws, omar);
    const { Redis } = await import('ioredis');
    const redis = new Redis(TEST_REDIS_URL);
    try {
      // As a replica routes a publish, once past its TTL (a message delayed in Redis), once within it.
      const message = (id: string, expiresAt: number) =>
        JSON.stringify({
          kind: 'deliver',
          attempt: 1,
          notification: {
            id,
            seq: 1,
            event: 'late',
            payload: {},
            topic: null,
            createdAt: new Date().toISOString(),
            expiresAt,
          },
        });
      const expired = randomUUID();
      const live = randomUUID();
      await redis.publish(`${cluster.redisPrefix}:u:${omar}`, message(expired, Date.now() - 1000));
      await redis.publish(`${cluster.redisPrefix}:u:${omar}`, message(live, Date.now() + 60_000));
      await client.notification(live);
      expect(client.notifications().map((n) => n.id)).toEqual([live]);
    } finally {
      redis.disconnect();
    }
  });

  it('does not retry a user who went offline, and replays to them on return', async () => {
    const uma = user('uma');
    const first = await connect(r1().ws, uma);
    const { id } = await publish(r2().http, { to: { users: [uma] }, event: 'while.away' });
    await first.notification(id);
    await first.close();
    await cluster.waitParked(id, uma);
    expect(await cluster.deliveryOf(id, uma)).toEqual({ status: 'sent', attempts: 1 });

    const back = await connect(r2().ws, uma);
    const [again] = await back.notification(id);
    expect(again!.attempt).toBe(2);
  });

  it('delivers to every connection of a user, and an ack from any of them acks the delivery', async () => {
    const erin = user('erin');
    const a = await connect(r1().ws, erin);
    const b = await connect(r2().ws, erin, { via: 'header' });
    const { id } = await publish(r1().http, { to: { users: [erin] }, event: 'both' });
    await a.notification(id);
    await b.notification(id);
    expect(await b.ack(id)).toMatchObject({ status: 'ok' });
    expect(await cluster.deliveryOf(id, erin)).toEqual({ status: 'acked', attempts: 1 });
  });

  it('makes one notification of two publishes with the same idempotency key, and refuses the key with another body', async () => {
    const frank = user('frank');
    const key = `key-${randomUUID()}`;
    const body = { to: { users: [frank] }, event: 'invoice.paid', payload: { amount: 10 } };
    const one = await publish(r1().http, body, key);
    const two = await publish(r2().http, body, key);
    expect(two).toEqual(one);
    const rows = await cluster.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM notifications WHERE idempotency_key = $1',
      [key],
    );
    expect(rows[0]!.n).toBe(1);
    expect(await cluster.db.query('SELECT 1 FROM deliveries WHERE user_id = $1', [frank])).toHaveLength(1);

    const conflict = await fetch(`${r1().http}/v1/notifications`, {
      method: 'POST',
      headers: {
        authorization: `Bearer test-publisher-key-0123456789`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body: JSON.stringify({ ...body, payload: { amount: 11 } }),
    });
    expect(conflict.status).toBe(422);
    expect(((await conflict.json()) as { error: { code: string } }).error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('expires a notification whose TTL passed and never delivers it', async () => {
    const grace = user('grace');
    const { id } = await publish(r1().http, { to: { users: [grace] }, event: 'flash.sale', ttlSeconds: 1 });
    await waitFor(
      'delivery to expire',
      async () => (await cluster.deliveryOf(id, grace))?.status === 'expired',
      10_000,
    );
    const client = await connect(r2().ws, grace);
    const marker = await publish(r1().http, { to: { users: [grace] }, event: 'marker' });
    await client.notification(marker.id);
    expect(client.notifications().map((n) => n.id)).toEqual([marker.id]);
    expect((await getNotification(r1().http, id)).counts.expired).toBe(1);
    expect(await client.ack(id)).toEqual({ type: 'ack', id, status: 'expired' });
  });

  it('delivers a topic publish to subscribers only, on either replica', async () => {
    const topic = `news-${randomUUID().slice(0, 8)}`;
    const heidi = user('heidi');
    const ivan = user('ivan');
    const judy = user('judy');
    const h = await connect(r1().ws, heidi);
    const i = await connect(r2().ws, ivan);
    const j = await connect(r2().ws, judy);
    expect(await h.command({ type: 'subscribe', channel: topic, id: 's1' })).toEqual({
      type: 'ack',
      id: 's1',
      status: 'ok',
    });
    expect(await i.command({ type: 'subscribe', channel: topic, id: 's2' })).toEqual({
      type: 'ack',
      id: 's2',
      status: 'ok',
    });
    expect(await i.command({ type: 'subscribe', channel: topic, id: 's3' })).toEqual({
      type: 'ack',
      id: 's3',
      status: 'duplicate',
    });

    const published = await publish(r1().http, { to: { topic }, event: 'headline', payload: { title: 'hi' } });
    expect(published.recipients).toBe(2);
    const [fromTopic] = await h.notification(published.id);
    expect(fromTopic!.topic).toBe(topic);
    await i.notification(published.id);
    const marker = await publish(r1().http, { to: { users: [judy] }, event: 'marker' });
    await j.notification(marker.id);
    expect(j.notifications().map((n) => n.id)).toEqual([marker.id]);

    expect(await i.command({ type: 'unsubscribe', channel: topic, id: 'u1' })).toEqual({
      type: 'ack',
      id: 'u1',
      status: 'ok',
    });
    const after = await publish(r2().http, { to: { topic }, event: 'headline' });
    expect(after.recipients).toBe(1);
  });

  it('delivers a large user list (sent once per replica, not per user) to exactly its connected recipients', async () => {
    const online = ['list-a', 'list-b', 'list-c', 'list-d'].map(user);
    const bystander = user('list-bystander');
    const sockets = await Promise.all(online.map((u, i) => connect((i % 2 === 0 ? r1() : r2()).ws, u)));
    const outsider = await connect(r1().ws, bystander);
    const offline = Array.from({ length: 96 }, (_, i) => `list-offline-${i}-${randomUUID().slice(0, 6)}`);
    const published = await publish(r2().http, {
      to: { users: [...offline, ...online] },
      event: 'big.list',
      payload: { blob: 'x'.repeat(4000) },
    });
    expect(published.recipients).toBe(100);
    for (const socket of sockets)
      expect((await socket.notification(published.id))[0]!.payload).toEqual({ blob: 'x'.repeat(4000) });
    const marker = await publish(r2().http, { to: { users: [bystander] }, event: 'marker' });
    await outsider.notification(marker.id);
    expect(outsider.notifications().map((n) => n.id)).toEqual([marker.id]);
  });

  it('times a large fan-out by the sweep instead of a job per delivery, and writes its acks in batches', async () => {
    const fans = Array.from({ length: 150 }, (_, i) => user(`fan${i}`));
    const clients = await Promise.all(fans.slice(1).map((u) => connect(r1().ws, u, { autoAck: true })));
    const silent = await connect(r1().ws, fans[0]!); // never acks
    const { id } = await publish(r2().http, { to: { users: fans }, event: 'fan.out' });
    await Promise.all(clients.map((c) => c.notification(id)));
    await waitFor('149 acks recorded', async () => {
      const rows = await cluster.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM deliveries WHERE notification_id = $1 AND status = 'acked'`,
        [id],
      );
      return rows[0]!.n === 149;
    });
    // Each client got one answer per ack: ok (a second ack of the same id answers duplicate).
    expect(clients.every((c) => c.frames.some((f) => f.type === 'ack' && f.id === id && f.status === 'ok'))).toBe(true);
    expect(await clients[0]!.ack(id)).toMatchObject({ type: 'ack', status: 'duplicate' });
    // The one that never acked is sent again by the sweep (no BullMQ job was made for these 150).
    const [, second] = await silent.notification(id, 2, 10_000);
    expect(second).toMatchObject({ id, attempt: 2 });
    expect(await silent.ack(id)).toMatchObject({ status: 'ok' });
  });

  it('delivers an everyone publish to every known user, connected ones at once', async () => {
    const kim = user('kim');
    const leo = user('leo');
    const k = await connect(r1().ws, kim);
    const l = await connect(r2().ws, leo);
    const known = (await cluster.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users'))[0]!.n;
    const published = await publish(r2().http, {
      to: { all: true },
      event: 'maintenance',
      payload: { at: 'midnight' },
    });
    expect(published.recipients).toBe(known);
    await k.notification(published.id);
    await l.notification(published.id);
  });

  it("writes nothing for a broadcast's send; an ack moves a cursor, and the sending replica's check hands off and resends what is not acked", async () => {
    const topic = `alerts-${randomUUID().slice(0, 8)}`;
    const acking = user('bc-ack');
    const silent = user('bc-silent');
    const a = await connect(r1().ws, acking);
    // The silent user has a connection on each replica: both send it, and each checks it.
    const s = await connect(r2().ws, silent);
    const s1 = await connect(r1().ws, silent);
    expect(await a.command({ type: 'subscribe', channel: topic, id: 's1' })).toMatchObject({ status: 'ok' });
    expect(await s.command({ type: 'subscribe', channel: topic, id: 's2' })).toMatchObject({ status: 'ok' });
    const { id } = await publish(r1().http, { to: { topic }, event: 'alert' });
    const [first] = await a.notification(id);
    expect(first!.attempt).toBe(1);
    // Acked at once, well inside the ack timeout (400 ms here); the other never acks.
    const acked = a.ack(id);
    await s.notification(id);
    await s1.notification(id);
    // No delivery row for anyone (ADR 0007; read right away: the replicas' checks run from 450 ms on), and
    // no send record: each replica keeps its check in memory (ADR 0009).
    expect(await cluster.deliveryOf(id, silent)).toBeUndefined();
    expect(
      (await cluster.db.query<{ t: string | null }>(`SELECT to_regclass('send_checks')::text AS t`))[0]!.t,
    ).toBeNull();
    expect(await acked).toMatchObject({ type: 'ack', status: 'ok' });
    // The ack settled the offset on the user's cursor and is in the journal; still no row.
    const journaled = async () =>
      (
        await cluster.db.query<{ user_ids: string[] }>(
          'SELECT user_ids FROM broadcast_acks WHERE notification_id = $1',
          [id],
        )
      ).flatMap((j) => j.user_ids);
    expect(await journaled()).toEqual([acking]);
    expect(await cluster.deliveryOf(id, acking)).toBeUndefined();

    // Never acked: each replica checks its send after the ack timeout; the first hands the delivery off to a
    // row (sent once) and resends it until it fails, the second finds it handed off. Attempts go 1, 2, 3 on
    // both connections.
    const frames = await s.notification(id, 3, 15_000);
    expect(frames.map((f) => f.attempt)).toEqual([1, 2, 3]);
    expect((await s1.notification(id, 3, 15_000)).map((f) => f.attempt)).toEqual([1, 2, 3]);
    await waitFor(
      'the silent delivery to fail',
      async () => (await cluster.deliveryOf(id, silent))?.status === 'failed',
    );
    expect(await cluster.deliveryOf(id, silent)).toEqual({ status: 'failed', attempts: 3 });
    expect(a.notifications().filter((n) => n.id === id)).toHaveLength(1);
    expect(await cluster.deliveryOf(id, acking)).toBeUndefined();
    expect(await journaled()).toEqual([acking]);
  });

  it('refuses a missing, forged or expired token at the upgrade with 401', async () => {
    const url = r1().ws;
    expect(await TestClient.refusedStatus(url)).toBe(401);
    expect(
      await TestClient.refusedStatus(
        `${url}?token=${userToken('mallory', 3600, 'another-secret-0123456789abcdef0123')}`,
      ),
    ).toBe(401);
    expect(await TestClient.refusedStatus(`${url}?token=${userToken('mallory', -60)}`)).toBe(401);
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 3600 }),
    ).toString('base64url')}.`;
    expect(await TestClient.refusedStatus(`${url}?token=${none}`)).toBe(401);
    expect(await TestClient.refusedStatus(url, { authorization: 'Bearer not-a-jwt' })).toBe(401);
  });

  it("refuses an ack of another user's notification and of an unknown id with the same FORBIDDEN", async () => {
    const owner = user('owner');
    const other = user('other');
    const o = await connect(r1().ws, owner);
    const x = await connect(r2().ws, other);
    const { id } = await publish(r1().http, { to: { users: [owner] }, event: 'private' });
    await o.notification(id);

    const stolen = (await x.ack(id)) as ErrorFrame;
    expect(stolen).toMatchObject({ type: 'error', code: 'FORBIDDEN', id });
    const unknown = (await x.ack(randomUUID())) as ErrorFrame;
    expect(unknown.code).toBe('FORBIDDEN');
    expect(unknown.message).toBe(stolen.message);
    expect((await cluster.waitRecorded(id, owner)).status).toBe('sent');
  });

  it('answers bad frames with error frames and keeps the connection open', async () => {
    const client = await connect(r1().ws, user('proto'));
    const from = client.frames.length;
    client.send('not json');
    expect(await client.next((f) => f.type === 'error', 5000, from)).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await client.command({ type: 'teleport', id: 'c1' })).toMatchObject({
      type: 'error',
      code: 'UNKNOWN_TYPE',
      id: 'c1',
    });
    expect(await client.command({ type: 'subscribe', channel: 'bad topic!', id: 'c2' })).toMatchObject({
      type: 'error',
      code: 'BAD_REQUEST',
      id: 'c2',
    });
    const pong = await client.command({ type: 'ping', id: 'p1' });
    expect(pong).toMatchObject({ type: 'pong', id: 'p1' });
    expect(client.closeCode).toBeNull();
  });

  it('keeps presence of live connections in Redis', async () => {
    const nina = user('nina');
    await connect(r2().ws, nina);
    const { Redis } = await import('ioredis');
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const entries = await redis.hgetall(`${cluster.redisPrefix}:user:${nina}`);
      expect(Object.values(entries)).toEqual([r2().id]);
      const conns = await redis.hvals(`${cluster.redisPrefix}:conns:${r2().id}`);
      const mine = conns
        .map((c) => JSON.parse(c) as { userId: string; remoteAddress: string })
        .filter((c) => c.userId === nina);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.remoteAddress).toContain('127.0.0.1');
    } finally {
      redis.disconnect();
    }
  });

  it('counts a notification that nobody holds as pending, and delivers it to the first connection', async () => {
    const oscar = user('oscar');
    const { id } = await publish(r1().http, { to: { users: [oscar] }, event: 'waiting' });
    expect(await cluster.deliveryOf(id, oscar)).toEqual({ status: 'pending', attempts: 0 });
    const client = await connect(r1().ws, oscar);
    const [frame] = await client.notification(id);
    expect(frame!.attempt).toBe(1);
  });
});
