import { randomUUID } from 'node:crypto';
import { getNotification, publish, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/**
 * Delivery semantics that cross two replica processes sharing PostgreSQL and Redis: routing between them,
 * replay on the other replica, a user on both. One replica's behaviour is test/integration/delivery.int-spec.ts.
 */
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
});
