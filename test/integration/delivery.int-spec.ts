import { randomUUID } from 'node:crypto';
import type { ErrorFrame } from '@herald/protocol';
import { getNotification, publish, userToken } from '../helpers/api';
import { TEST_REDIS_URL } from '../helpers/env';
import { InProcessHerald } from '../helpers/in-process';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/**
 * Delivery semantics on one replica, the app in-process against real PostgreSQL and Redis: sends, acks,
 * replay, redelivery, expiry, the sweep. What needs two replicas stays in test/e2e/delivery.e2e-spec.ts.
 */
describe('Delivery on one replica (in-process)', () => {
  let herald: InProcessHerald;
  const clients: TestClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const connect = async (url: string, userId: string, options?: Parameters<typeof TestClient.connect>[2]) => {
    const client = await TestClient.connect(url, userToken(userId), options);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    herald = await InProcessHerald.start('delivery');
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await herald?.stop();
  });

  it('redelivers an unacked notification with attempts counted, then marks it failed', async () => {
    const bob = user('bob');
    const client = await connect(herald.ws, bob);
    const { id } = await publish(herald.http, { to: { users: [bob] }, event: 'reminder', payload: {} });

    const frames = await client.notification(id, 3, 15_000);
    expect(frames.map((f) => f.attempt)).toEqual([1, 2, 3]);
    await waitFor('delivery to fail', async () => (await herald.deliveryOf(id, bob))?.status === 'failed');
    expect(await herald.deliveryOf(id, bob)).toEqual({ status: 'failed', attempts: 3 });
    expect((await getNotification(herald.http, id)).counts.failed).toBe(1);
  });

  it('records a replayed send with its ack, and resends what a replay sent and was not acked until it fails', async () => {
    const rita = user('rita');
    const acked = await publish(herald.http, { to: { users: [rita] }, event: 'replayed.acked' });
    const ignored = await publish(herald.http, { to: { users: [rita] }, event: 'replayed.ignored' });
    const client = await connect(herald.ws, rita);
    const [first] = await client.notification(acked.id);
    expect(first!.attempt).toBe(1);
    // The replay wrote nothing per delivery; the ack records its send.
    expect(await herald.deliveryOf(ignored.id, rita)).toEqual({ status: 'pending', attempts: 0 });
    expect(await client.ack(acked.id)).toMatchObject({ type: 'ack', status: 'ok' });
    expect(await herald.deliveryOf(acked.id, rita)).toEqual({ status: 'acked', attempts: 1 });

    // Never acked: the sweep checks the replay's batch after the ack timeout and resends it.
    const frames = await client.notification(ignored.id, 3, 15_000);
    expect(frames.map((f) => f.attempt)).toEqual([1, 2, 3]);
    await waitFor(
      'the ignored delivery to fail',
      async () => (await herald.deliveryOf(ignored.id, rita))?.status === 'failed',
    );
    expect(await herald.deliveryOf(ignored.id, rita)).toEqual({ status: 'failed', attempts: 3 });
    expect(client.notifications().filter((n) => n.id === acked.id)).toHaveLength(1);
    const checks = await herald.db.query<{ n: string }>('SELECT count(*) AS n FROM replay_checks WHERE user_id = $1', [
      rita,
    ]);
    expect(Number(checks[0]!.n)).toBe(0);
  });

  it('acks many notifications in one frame, answering each id: ok, duplicate, forbidden', async () => {
    const sam = user('sam');
    const stranger = user('stranger');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await publish(herald.http, { to: { users: [sam] }, event: 'many' })).id);
    const notMine = (await publish(herald.http, { to: { users: [stranger] }, event: 'other' })).id;
    const client = await connect(herald.ws, sam);
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
    for (const id of ids) expect(await herald.deliveryOf(id, sam)).toEqual({ status: 'acked', attempts: 1 });
    expect((await herald.deliveryOf(notMine, stranger))?.status).toBe('pending');
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
          publish(herald.http, {
            to: { users: [vera] },
            event: 'backlog',
            payload: { n: chunk * 50 + i },
          }),
        ),
      );
      published.push(...results.map((r) => r.seq));
    }
    const client = await connect(herald.ws, vera);
    // Unacked, so a slow replay may already see its first items redelivered: judge first arrivals (dedup by id).
    const firstArrivals = () => [...new Map(client.notifications().map((n) => [n.id, n.seq] as const)).values()];
    await waitFor('the whole backlog', () => firstArrivals().length >= 1100, 30_000);
    const seqs = firstArrivals().slice(0, 1100);
    expect(seqs).toEqual([...published].sort((a, b) => a - b));
  });

  it('sends live notifications after the replay, never before it', async () => {
    const dave = user('dave');
    const early = await publish(herald.http, { to: { users: [dave] }, event: 'early' });
    const client = await connect(herald.ws, dave);
    const live = await publish(herald.http, { to: { users: [dave] }, event: 'live' });
    await client.notification(live.id);
    expect(client.notifications().map((n) => n.id)).toEqual([early.id, live.id]);
  });

  it('records a first live send with its ack, or shortly after it left when no ack comes', async () => {
    const lena = user('lena');
    const client = await connect(herald.ws, lena);
    const acked = await publish(herald.http, { to: { users: [lena] }, event: 'acked.fast' });
    await client.notification(acked.id);
    expect(await client.ack(acked.id)).toMatchObject({ status: 'ok' });
    // The ack recorded the send with itself (or came after its record): one send, acked.
    expect(await herald.deliveryOf(acked.id, lena)).toEqual({ status: 'acked', attempts: 1 });
    const unacked = await publish(herald.http, { to: { users: [lena] }, event: 'left.unacked' });
    await client.notification(unacked.id);
    expect(await herald.waitRecorded(unacked.id, lena)).toEqual({ status: 'sent', attempts: 1 });
  });

  it('sends nothing for a bus message that arrives after the notification expired', async () => {
    const omar = user('omar');
    const client = await connect(herald.ws, omar);
    const { Redis } = await import('ioredis');
    const redis = new Redis(TEST_REDIS_URL);
    try {
      // As a replica routes a publish, once past its TTL (a message delayed in Redis), once within it.
      const message = (id: string, expiresAt: number) =>
        JSON.stringify({
          kind: 'deliver',
          userIds: [omar],
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
      // On the replica's own channel (ADR 0019), as another replica sends to a user presence places here.
      const channel = `${herald.redisPrefix}:r:${herald.id}`;
      await redis.publish(channel, message(expired, Date.now() - 1000));
      await redis.publish(channel, message(live, Date.now() + 60_000));
      await client.notification(live);
      expect(client.notifications().map((n) => n.id)).toEqual([live]);
    } finally {
      redis.disconnect();
    }
  });

  it('does not retry a user who went offline, and replays to them on return', async () => {
    const uma = user('uma');
    const first = await connect(herald.ws, uma);
    const { id } = await publish(herald.http, { to: { users: [uma] }, event: 'while.away' });
    await first.notification(id);
    await first.close();
    await herald.waitParked(id, uma);
    expect(await herald.deliveryOf(id, uma)).toEqual({ status: 'sent', attempts: 1 });

    const back = await connect(herald.ws, uma);
    const [again] = await back.notification(id);
    expect(again!.attempt).toBe(2);
  });

  it('expires a notification whose TTL passed and never delivers it', async () => {
    const grace = user('grace');
    const { id } = await publish(herald.http, { to: { users: [grace] }, event: 'flash.sale', ttlSeconds: 1 });
    await waitFor('delivery to expire', async () => (await herald.deliveryOf(id, grace))?.status === 'expired', 10_000);
    const client = await connect(herald.ws, grace);
    const marker = await publish(herald.http, { to: { users: [grace] }, event: 'marker' });
    await client.notification(marker.id);
    expect(client.notifications().map((n) => n.id)).toEqual([marker.id]);
    expect((await getNotification(herald.http, id)).counts.expired).toBe(1);
    expect(await client.ack(id)).toEqual({ type: 'ack', id, status: 'expired' });
  });

  it('times a large fan-out by the sweep instead of a job per delivery, and writes its acks in batches', async () => {
    const fans = Array.from({ length: 150 }, (_, i) => user(`fan${i}`));
    const clients = await Promise.all(fans.slice(1).map((u) => connect(herald.ws, u, { autoAck: true })));
    const silent = await connect(herald.ws, fans[0]!); // never acks
    const { id } = await publish(herald.http, { to: { users: fans }, event: 'fan.out' });
    await Promise.all(clients.map((c) => c.notification(id)));
    await waitFor('149 acks recorded', async () => {
      const rows = await herald.db.query<{ n: number }>(
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
    const k = await connect(herald.ws, kim);
    const l = await connect(herald.ws, leo);
    const known = (await herald.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users'))[0]!.n;
    const published = await publish(herald.http, {
      to: { all: true },
      event: 'maintenance',
      payload: { at: 'midnight' },
    });
    expect(published.recipients).toBe(known);
    await k.notification(published.id);
    await l.notification(published.id);
  });

  it('refuses a missing, forged or expired token at the upgrade with 401', async () => {
    const url = herald.ws;
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
    const o = await connect(herald.ws, owner);
    const x = await connect(herald.ws, other);
    const { id } = await publish(herald.http, { to: { users: [owner] }, event: 'private' });
    await o.notification(id);

    const stolen = (await x.ack(id)) as ErrorFrame;
    expect(stolen).toMatchObject({ type: 'error', code: 'FORBIDDEN', id });
    const unknown = (await x.ack(randomUUID())) as ErrorFrame;
    expect(unknown.code).toBe('FORBIDDEN');
    expect(unknown.message).toBe(stolen.message);
    expect((await herald.waitRecorded(id, owner)).status).toBe('sent');
  });

  it('answers bad frames with error frames and keeps the connection open', async () => {
    const client = await connect(herald.ws, user('proto'));
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
    await connect(herald.ws, nina);
    const { Redis } = await import('ioredis');
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const entries = await redis.hgetall(`${herald.redisPrefix}:user:${nina}`);
      expect(Object.values(entries)).toEqual([herald.id]);
      const conns = await redis.hvals(`${herald.redisPrefix}:conns:${herald.id}`);
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
    const { id } = await publish(herald.http, { to: { users: [oscar] }, event: 'waiting' });
    expect(await herald.deliveryOf(id, oscar)).toEqual({ status: 'pending', attempts: 0 });
    const client = await connect(herald.ws, oscar);
    const [frame] = await client.notification(id);
    expect(frame!.attempt).toBe(1);
  });
});
