import { randomUUID } from 'node:crypto';
import type {
  AdminBroadcastPreview,
  AdminConnectionsResponse,
  AdminEvent,
  AdminNotificationsResponse,
  AdminSession,
  AdminStats,
  ApiErrorBody,
  NotificationView,
  PublishResponse,
} from '@herald/protocol';
import { Redis } from 'ioredis';
import { publish, request, userToken } from '../helpers/api';
import { TEST_REDIS_URL } from '../helpers/env';
import { TestCluster } from '../helpers/cluster';
import { TEST_ADMIN_PASSWORD } from '../helpers/replica';
import { readEventStream } from '../helpers/sse';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

const PASSWORD = TEST_ADMIN_PASSWORD;

/** A raw reader of the admin event stream. */
async function adminEvents(base: string, token: string): Promise<{ events: AdminEvent[]; close(): void }> {
  const controller = new AbortController();
  const response = await fetch(`${base}/admin/api/events?token=${encodeURIComponent(token)}`, {
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  const events: AdminEvent[] = [];
  readEventStream(response, (event, data) => {
    if (event !== 'stats') events.push(JSON.parse(data) as AdminEvent);
  });
  return { events, close: () => controller.abort() };
}

/**
 * The admin API across two replicas: the shared login limit, live connections and the event stream,
 * broadcasts and statistics. Its HTTP surface on one replica is test/integration/admin-api.int-spec.ts;
 * what its services do, test/integration/admin.int-spec.ts.
 */
describe('Admin API', () => {
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const r1 = () => cluster.replicas[0]!;
  const r2 = () => cluster.replicas[1]!;
  let session: string;
  const asAdmin = <T>(base: string, method: string, path: string, body?: unknown) =>
    request<T>(base, method, path, { apiKey: session, ...(body !== undefined ? { body } : {}) });

  beforeAll(async () => {
    cluster = await TestCluster.start('admin', 2, {
      HERALD_ADMIN_PASSWORD: PASSWORD,
      HERALD_ADMIN_LOGIN_ATTEMPTS: '3',
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
    });
    const login = await request<AdminSession>(r1().http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: PASSWORD },
    });
    expect(login.status).toBe(201);
    session = login.body.token;
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('logs in with the password, and limits wrong passwords per address across replicas', async () => {
    const login = await request<AdminSession>(r2().http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: PASSWORD },
    });
    expect(login.status).toBe(201);
    expect(Date.parse(login.body.expiresAt) - Date.now()).toBeGreaterThan(8 * 3600 * 1000 - 60_000);
    // A made-up client address (the replicas trust 127.0.0.1 as a proxy), so other tests keep theirs.
    const from = { 'x-forwarded-for': '198.51.100.7' };
    const wrong = () =>
      request<ApiErrorBody>(r1().http, 'POST', '/admin/api/login', {
        apiKey: null,
        headers: from,
        body: { password: 'guess' },
      });
    expect((await wrong()).status).toBe(401);
    expect((await wrong()).body.error.message).toBe('wrong password');
    expect((await wrong()).status).toBe(401);
    // The fourth, on the other replica: the count is shared.
    const limited = await request<ApiErrorBody>(r2().http, 'POST', '/admin/api/login', {
      apiKey: null,
      headers: from,
      body: { password: PASSWORD },
    });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  // Before any test opens an admin stream: nobody has watched this cluster yet.
  it('makes no admin events while nobody watches, and makes them on every replica once an admin does', async () => {
    const channel = new Redis(TEST_REDIS_URL);
    const heard: string[] = [];
    try {
      channel.on('message', (_name: string, raw: string) => heard.push(raw));
      await channel.subscribe(`${cluster.redisPrefix}:admin:events`);
      const erin = user('erin');
      const e = await TestClient.connect(r2().ws, userToken(erin));
      clients.push(e);
      const unwatched = await publish(r1().http, { to: { users: [erin] }, event: 'unwatched' });
      await e.notification(unwatched.id);
      expect(await e.ack(unwatched.id)).toMatchObject({ type: 'ack', status: 'ok' });
      // A marker published after the ack was answered: whatever the replicas published before it, came before it.
      const marker = `{"type":"marker","at":${Date.now()}}`;
      const publisher = new Redis(TEST_REDIS_URL);
      await publisher.publish(`${cluster.redisPrefix}:admin:events`, marker);
      publisher.disconnect();
      await waitFor('the marker', () => heard.includes(marker));
      expect(heard).toEqual([marker]);

      // An admin opens a stream on r1; r2, which holds erin, hears of it and makes events again.
      const stream = await adminEvents(r1().http, session);
      await waitFor('the watching announcement', () => heard.includes('{"type":"watching"}'));
      const watched = await publish(r1().http, { to: { users: [erin] }, event: 'watched' });
      await e.notification(watched.id);
      await e.ack(watched.id);
      await waitFor('the ack on the admin stream', () =>
        stream.events.some((event) => event.type === 'user.acked' && event.userId === erin),
      );
      // The announcement itself is for the replicas, not for the console.
      expect(stream.events.some((event) => (event.type as string) === 'watching')).toBe(false);
      stream.close();
    } finally {
      channel.disconnect();
    }
  });

  it('lists live connections across replicas with their topics, and disconnects one, live on the event stream', async () => {
    const stream = await adminEvents(r2().http, session);
    const alice = user('alice');
    const bob = user('bob');
    const a = await TestClient.connect(r1().ws, userToken(alice));
    const b = await TestClient.connect(r2().ws, userToken(bob));
    clients.push(a, b);
    await a.command({ type: 'subscribe', channel: 'news', id: 's1' });
    await waitFor('both openings on the stream', () =>
      [alice, bob].every((u) => stream.events.some((e) => e.type === 'connection.opened' && e.connection.userId === u)),
    );
    const list = await asAdmin<AdminConnectionsResponse>(r1().http, 'GET', '/admin/api/connections');
    expect(list.status).toBe(200);
    const mine = list.body.items.filter((c) => c.userId === alice || c.userId === bob);
    expect(mine.map((c) => [c.userId, c.replicaId]).sort()).toEqual(
      [
        [alice, r1().id],
        [bob, r2().id],
      ].sort(),
    );
    expect(list.body.perReplica[r1().id]).toBeGreaterThanOrEqual(1);
    await waitFor('the topic to show', async () => {
      const one = await asAdmin<AdminConnectionsResponse>(r1().http, 'GET', `/admin/api/connections?userId=${alice}`);
      return one.body.items.length === 1 && one.body.items[0]!.topics.includes('news');
    });

    const target = mine.find((c) => c.userId === bob)!;
    const kicked = await asAdmin<void>(r1().http, 'DELETE', `/admin/api/connections/${target.connectionId}`);
    expect(kicked.status).toBe(204);
    expect(await b.waitClosed()).toBe(1000);
    expect(b.closeReason).toBe('disconnected by an admin');
    await waitFor('the closing on the stream', () =>
      stream.events.some((e) => e.type === 'connection.closed' && e.connectionId === target.connectionId),
    );
    const missing = await asAdmin<ApiErrorBody>(r1().http, 'DELETE', `/admin/api/connections/${randomUUID()}`);
    expect(missing.status).toBe(404);
    stream.close();
  });

  it('previews a broadcast, sends it, and streams its progress to acked; history and detail show it', async () => {
    const stream = await adminEvents(r1().http, session);
    const carol = user('carol');
    const dave = user('dave');
    const c = await TestClient.connect(r1().ws, userToken(carol));
    const d = await TestClient.connect(r2().ws, userToken(dave));
    clients.push(c, d);
    const body = { to: { users: [carol, dave] }, event: 'console.broadcast', payload: { text: 'hello' } };
    const preview = await asAdmin<AdminBroadcastPreview>(r2().http, 'POST', '/admin/api/broadcasts/preview', body);
    expect(preview.body).toEqual({ recipients: 2 });
    const bad = await asAdmin<ApiErrorBody>(r2().http, 'POST', '/admin/api/broadcasts/preview', { to: {}, event: '' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details?.length).toBeGreaterThan(0);

    const sent = await asAdmin<PublishResponse>(r2().http, 'POST', '/admin/api/broadcasts', body);
    expect(sent.status).toBe(202);
    for (const client of [c, d]) {
      const [frame] = await client.notification(sent.body.id);
      await client.ack(frame!.id);
    }
    await waitFor('progress reaching acked on the stream', () =>
      stream.events.some((e) => e.type === 'notification.progress' && e.id === sent.body.id && e.counts.acked === 2),
    );

    const history = await asAdmin<AdminNotificationsResponse>(
      r1().http,
      'GET',
      `/admin/api/notifications?event=console.broadcast&userId=${carol}&status=acked`,
    );
    expect(history.status).toBe(200);
    expect(history.body.items.map((n) => n.id)).toEqual([sent.body.id]);
    expect(history.body.items[0]).toMatchObject({ publisherId: 'admin-console', recipients: 2, counts: { acked: 2 } });
    // User and status together: that user's delivery in that state, not anyone's.
    const other = await publish(r1().http, { to: { users: [carol, dave] }, event: 'console.pair' });
    await d.notification(other.id);
    await d.ack(other.id);
    const carolsAcked = await asAdmin<AdminNotificationsResponse>(
      r1().http,
      'GET',
      `/admin/api/notifications?event=console.pair&userId=${carol}&status=acked`,
    );
    expect(carolsAcked.body.items).toEqual([]);
    const davesAcked = await asAdmin<AdminNotificationsResponse>(
      r1().http,
      'GET',
      `/admin/api/notifications?event=console.pair&userId=${dave}&status=acked`,
    );
    expect(davesAcked.body.items.map((n) => n.id)).toEqual([other.id]);
    const detail = await asAdmin<NotificationView>(r1().http, 'GET', `/admin/api/notifications/${sent.body.id}`);
    expect(detail.body.deliveries.items.map((i) => [i.userId, i.status, i.attempts])).toEqual(
      [
        [carol, 'acked', 1],
        [dave, 'acked', 1],
      ].sort(),
    );
    expect(detail.body.deliveries.items.every((i) => i.firstSentAt !== null && i.ackedAt !== null)).toBe(true);
    // A publisher's notification is visible to the console too.
    const theirs = await publish(r1().http, { to: { users: [carol] }, event: 'from.service' });
    const seen = await asAdmin<NotificationView>(r1().http, 'GET', `/admin/api/notifications/${theirs.id}`);
    expect(seen.status).toBe(200);
    stream.close();
  });

  it('reports live statistics: connections per replica, notifications per minute, ack latency', async () => {
    const frank = user('frank');
    const f = await TestClient.connect(r2().ws, userToken(frank));
    clients.push(f);
    const { id } = await publish(r1().http, { to: { users: [frank] }, event: 'stats' });
    await f.notification(id);
    await f.ack(id);
    await waitFor('acked', async () => (await cluster.deliveryOf(id, frank))?.status === 'acked');
    const stats = await asAdmin<AdminStats>(r1().http, 'GET', '/admin/api/stats');
    expect(stats.status).toBe(200);
    expect(stats.body.connections.total).toBeGreaterThanOrEqual(1);
    expect(stats.body.connections.perReplica[r2().id]).toBeGreaterThanOrEqual(1);
    expect(stats.body.notificationsPerMinute).toHaveLength(30);
    expect(stats.body.notificationsPerMinute.at(-1)!.count).toBeGreaterThanOrEqual(1);
    expect(stats.body.ackLatencyMs.samples).toBeGreaterThanOrEqual(1);
    expect(stats.body.ackLatencyMs.p50).toEqual(expect.any(Number));
  });
});
