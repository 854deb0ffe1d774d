import { randomUUID } from 'node:crypto';
import { publish, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { TEST_REDIS_URL } from '../helpers/env';
import { FAST_TIMINGS, Replica } from '../helpers/replica';
import type { Socket } from 'node:net';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/** Crashes and shutdowns: PostgreSQL decides, so nothing is lost. */
describe('Delivery through replica crashes and shutdowns', () => {
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    cluster = await TestCluster.start('faults');
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('sends again after SIGKILL of the replica that held the user between send and ack', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const alice = user('alice');
    const before = await TestClient.connect(r1.ws, userToken(alice));
    clients.push(before);
    const { id } = await publish(r2.http, { to: { users: [alice] }, event: 'important', payload: { n: 1 } });
    await before.notification(id);
    expect(await cluster.waitRecorded(id, alice)).toEqual({ status: 'sent', attempts: 1 });

    await r1.kill();
    await before.waitClosed();

    const after = await TestClient.connect(r2.ws, userToken(alice));
    clients.push(after);
    const [again] = await after.notification(id);
    expect(again).toMatchObject({ id, attempt: 2, payload: { n: 1 } });
    expect(await after.ack(id)).toMatchObject({ status: 'ok' });
    expect(await cluster.deliveryOf(id, alice)).toEqual({ status: 'acked', attempts: 2 });

    await r1.start();
  });

  it("forgets a killed replica's presence by itself", async () => {
    const [r1] = cluster.replicas as [Replica, Replica];
    const bob = user('bob');
    const client = await TestClient.connect(r1.ws, userToken(bob));
    clients.push(client);
    const { Redis } = await import('ioredis');
    const redis = new Redis(TEST_REDIS_URL);
    try {
      expect(await redis.exists(`${cluster.redisPrefix}:replica:${r1.id}`)).toBe(1);
      await r1.kill();
      await waitFor(
        'dead replica presence to expire',
        async () => (await redis.exists(`${cluster.redisPrefix}:replica:${r1.id}`)) === 0,
        5000,
      );
      await waitFor(
        'its connections to expire',
        async () => (await redis.exists(`${cluster.redisPrefix}:conns:${r1.id}`)) === 0,
        5000,
      );
    } finally {
      redis.disconnect();
      await r1.start();
    }
  });

  it('does not count connections of a killed replica as online when it restarts under the same id', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const gus = user('gus');
    const client = await TestClient.connect(r1.ws, userToken(gus));
    clients.push(client);
    const { id } = await publish(r2.http, { to: { users: [gus] }, event: 'before.crash' });
    await client.notification(id);
    await r1.kill();
    await r1.start();
    // The check after the ack timeout must see gus offline (parked), not online forever.
    await cluster.waitParked(id, gus);
    const { Redis } = await import('ioredis');
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const conns = await redis.hvals(`${cluster.redisPrefix}:conns:${r1.id}`);
      expect(conns.map((c) => (JSON.parse(c) as { userId: string }).userId)).not.toContain(gus);
    } finally {
      redis.disconnect();
    }
  });

  it('routes a delivery whose bus message was lost (committed, never published) through the sweep, within the documented bound', async () => {
    const [r1] = cluster.replicas as [Replica, Replica];
    const carol = user('carol');
    const client = await TestClient.connect(r1.ws, userToken(carol));
    clients.push(client);
    // Exactly what a publish leaves behind when its replica dies after the commit and
    // before the Redis publish: the rows, and no bus message.
    const id = randomUUID();
    await cluster.db.query(
      `INSERT INTO notifications (id, publisher_id, request_hash, audience, event, payload, ttl_seconds, recipients, expires_at)
       VALUES ($1, 'crashed-publisher', 'h', $2, 'late.but.there', '{"n":7}', 60, 1, now() + interval '60 seconds')`,
      [id, JSON.stringify({ users: [carol] })],
    );
    // next_attempt_at as a publish writes it (backstopAt): commit + ack timeout + 2 sweep intervals.
    const ackTimeout = Number(FAST_TIMINGS.HERALD_ACK_TIMEOUT_MS);
    const sweepInterval = Number(FAST_TIMINGS.HERALD_SWEEP_INTERVAL_MS);
    const committedAt = Date.now();
    await cluster.db.query(
      `INSERT INTO deliveries (notification_id, user_id, seq, expires_at, next_attempt_at)
       SELECT id, $2, seq, expires_at, now() + make_interval(secs => $3::double precision / 1000)
         FROM notifications WHERE id = $1`,
      [id, carol, ackTimeout + 2 * sweepInterval],
    );
    const [frame] = await client.notification(id, 1, 10_000);
    // docs/reliability.md: within ack timeout + 3 sweep intervals of the commit (25 s by default); 1 s of slack here.
    expect(Date.now() - committedAt).toBeLessThan(ackTimeout + 3 * sweepInterval + 1000);
    expect(frame).toMatchObject({ attempt: 1, event: 'late.but.there', payload: { n: 7 } });
    expect(await client.ack(id)).toMatchObject({ status: 'ok' });
  });

  it('terminates a peer that stops answering WebSocket pings within two heartbeats', async () => {
    const [r1] = cluster.replicas as [Replica, Replica];
    const silent = await TestClient.connect(r1.ws, userToken(user('silent')), { autoPong: false });
    clients.push(silent);
    const started = Date.now();
    // HERALD_HEARTBEAT_MS is 1000 in the tests: reaped at the second ping after the silence began.
    expect(await silent.waitClosed(5000)).toBe(1006);
    expect(Date.now() - started).toBeLessThan(3000);
    // The log line travels through a pipe to a file: it may land just after the client saw the close.
    await waitFor('the reaping to be logged', () => r1.log().includes('reaping dead connection'), 2000);
  });

  it('closes a connection with 1008 when its token expires', async () => {
    const [r1] = cluster.replicas as [Replica, Replica];
    const client = await TestClient.connect(r1.ws, userToken(user('brief'), 2));
    clients.push(client);
    expect(await client.waitClosed(6000)).toBe(1008);
    expect(client.closeReason).toBe('token expired');
  });

  it('writes every ack a client sent while the replica was shutting down', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const erin = user('erin');
    const client = await TestClient.connect(r1.ws, userToken(erin));
    clients.push(client);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++)
      ids.push((await publish(r2.http, { to: { users: [erin] }, event: 'burst', payload: { i } })).id);
    await client.notification(ids[29]!);
    // SIGTERM first, then the acks in the same tick: they reach the replica while it shuts down.
    const stopping = r1.stop();
    for (const id of ids) client.send({ type: 'ack', id });
    expect(await stopping).toBe(0);
    const rows = await cluster.db.query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM deliveries WHERE user_id = $1 GROUP BY status',
      [erin],
    );
    expect(rows).toEqual([{ status: 'acked', n: 30 }]);
    await r1.start();
  });

  it('closes clients with 1001 on SIGTERM and exits cleanly within the grace, even with a client that never answers; unacked deliveries survive for the next connection', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const dave = user('dave');
    const client = await TestClient.connect(r1.ws, userToken(dave));
    clients.push(client);
    // A client that reads nothing: it never answers the close frame, so only the grace ends its wait.
    const stuck = await TestClient.connect(r1.ws, userToken(user('stuck')));
    clients.push(stuck);
    (stuck.socket as unknown as { _socket: Socket })._socket.pause();
    const { id } = await publish(r2.http, { to: { users: [dave] }, event: 'shutdown.test' });
    await client.notification(id);

    const stoppingAt = Date.now();
    const exitCode = await r1.stop();
    const tookMs = Date.now() - stoppingAt;
    expect(await client.waitClosed()).toBe(1001);
    expect(exitCode).toBe(0);
    // HERALD_SHUTDOWN_GRACE_MS (3000 here) bounds the wait for sockets and commands; closing the rest is quick.
    expect(tookMs).toBeLessThan(Number(FAST_TIMINGS.HERALD_SHUTDOWN_GRACE_MS) + 3000);
    stuck.terminate();
    expect(r1.log()).toContain('connections drained');

    const after = await TestClient.connect(r2.ws, userToken(dave));
    clients.push(after);
    await after.notification(id);
    await after.ack(id);
    expect((await cluster.deliveryOf(id, dave))?.status).toBe('acked');
    await r1.start();
  });
});
