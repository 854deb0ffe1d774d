import type { NotificationFrame } from '@herald/protocol';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { publish, request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { Edge } from '../helpers/edge';
import { assertNothingLost, Published } from '../helpers/loss-check';
import { scrape } from '../helpers/metrics';
import { Replica, TEST_ADMIN_PASSWORD, TEST_API_KEY } from '../helpers/replica';
import { holdFor, waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

const MAX_BUFFERED = 262_144;
const FRAMES_PER_SECOND = 20;
const FRAMES_BURST = 40;
/** A frame's worth of the rate refilled, and a little: a client that waits this between frames stays within it. */
const FRAME_INTERVAL_MS = 1000 / FRAMES_PER_SECOND + 5;
const PER_USER = 3;
const MAX_QUEUED = 400;
const SECOND_PUBLISHER_KEY = 'second-publisher-key-0123456789';
/**
 * The edge's handshake budget per client address, and how long the edge tests wait for it to refill: a
 * second's worth, or the whole burst; with a margin, as Nginx's clock and ours tick apart.
 */
const HANDSHAKES_PER_SECOND = 2;
const HANDSHAKE_BURST = 6;
const REFILL_MARGIN_MS = 100;
const ONE_SECOND_REFILL_MS = 1000 + REFILL_MARGIN_MS;
const FULL_REFILL_MS = (HANDSHAKE_BURST / HANDSHAKES_PER_SECOND) * 1000 + REFILL_MARGIN_MS;

/** Resource limits: each one holds, and what it refuses is refused clearly, with nothing lost. */
describe('Resource limits', () => {
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    cluster = await TestCluster.start('limits', 2, {
      HERALD_MAX_BUFFERED_BYTES: String(MAX_BUFFERED),
      HERALD_CLIENT_FRAMES_PER_SECOND: String(FRAMES_PER_SECOND),
      HERALD_CLIENT_FRAMES_BURST: String(FRAMES_BURST),
      HERALD_MAX_CONNECTIONS_PER_USER: String(PER_USER),
      HERALD_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
      HERALD_API_KEYS: `${TEST_API_KEY},${SECOND_PUBLISHER_KEY}`,
      // Slow readers are tested with large notifications; nothing here waits for redelivery.
      HERALD_ACK_TIMEOUT_MS: '10000',
      // A paused reader does not answer pings either: with the test's 1 s heartbeat it was reaped as a dead
      // peer before its send buffer crossed the cap, whenever the kernel's buffers took longer to fill.
      HERALD_HEARTBEAT_MS: '10000',
      // Below the 500 ids one `acks` frame may carry, so one frame can pass the bound.
      HERALD_MAX_QUEUED_COMMANDS: String(MAX_QUEUED),
    });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('cuts off a slow reader at the buffered-bytes cap while another client on the same replica keeps its latency; the slow one gets everything on return', async () => {
    const [r1] = cluster.replicas as [Replica, Replica];
    const slowUser = user('slow');
    const fastUser = user('fast');
    const slow = await TestClient.connect(r1.ws, userToken(slowUser));
    const fast = await TestClient.connect(r1.ws, userToken(fastUser), { autoAck: true });
    clients.push(slow, fast);
    // The slow client stops reading: the kernel buffers fill, then the replica's send buffer grows.
    (slow.socket as unknown as { _socket: Socket })._socket.pause();
    const cutOff = 'herald_connections_cut_off_total{reason="slow-consumer"}';
    const before = (await scrape([r1.http])).get(cutOff) ?? 0;
    const blob = 'x'.repeat(60_000);
    const published: Published[] = [];
    const latencies: number[] = [];
    for (let i = 0; i < 400; i++) {
      const { id } = await publish(r1.http, { to: { users: [slowUser] }, event: 'big', payload: { i, blob } });
      published.push({ id, userId: slowUser });
      if (i % 10 === 0) {
        // Meanwhile the fast client on the same replica gets its own notifications at once.
        const sentAt = Date.now();
        const fastOne = await publish(r1.http, { to: { users: [fastUser] }, event: 'small', payload: { i } });
        published.push({ id: fastOne.id, userId: fastUser });
        await fast.notification(fastOne.id, 1, 5000);
        latencies.push(Date.now() - sentAt);
        if (((await scrape([r1.http])).get(cutOff) ?? 0) > before) break;
      }
    }
    expect((await scrape([r1.http])).get(cutOff)).toBe(before + 1);
    // Bounded memory: the cut came after well under the whole burst.
    expect(published.filter((p) => p.userId === slowUser).length).toBeLessThan(400);
    expect(r1.log()).toMatch(/"cutOff":"slow-consumer"/);
    latencies.sort((a, b) => a - b);
    expect(latencies[latencies.length - 1]).toBeLessThan(2000);

    // It comes back and reads: every notification it missed is replayed, in order, and acked.
    slow.terminate();
    const back = await TestClient.connect(r1.ws, userToken(slowUser), { autoAck: true });
    clients.push(back);
    const slowIds = published.filter((p) => p.userId === slowUser).map((p) => p.id);
    await waitFor(
      'the returning slow reader to get every notification',
      () => slowIds.every((id) => back.notifications().some((n) => n.id === id)),
      30_000,
    );
    const seqs = back.notifications().map((n) => n.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    await waitFor('every ack to be recorded', async () => {
      const rows = await cluster.db.query<{ open: string }>(
        `SELECT count(*) AS open FROM deliveries WHERE user_id = ANY($1) AND status <> 'acked'`,
        [[slowUser, fastUser]],
      );
      return Number(rows[0]!.open) === 0;
    });
    const received = new Map([
      [slowUser, back.notifications().map((n) => n.id)],
      [fastUser, fast.notifications().map((n) => n.id)],
    ]);
    const report = await assertNothingLost(cluster.db, published, received);
    expect(report.acked).toBe(published.length);
  }, 90_000);

  it('answers RATE_LIMITED over the frame rate, then closes with 1008 a client that keeps going', async () => {
    const [r1] = cluster.replicas as [Replica, Replica];
    const flooder = await TestClient.connect(r1.ws, userToken(user('flood')));
    clients.push(flooder);
    for (let i = 0; i < 300 && flooder.closeCode === null; i++) flooder.send({ type: 'ping', id: `p${i}` });
    expect(await flooder.waitClosed(5000)).toBe(1008);
    expect(flooder.closeReason).toBe('rate limit exceeded');
    const pongs = flooder.frames.filter((f) => f.type === 'pong');
    const limited = flooder.frames.filter((f) => f.type === 'error' && f.code === 'RATE_LIMITED');
    // The burst is answered; beyond it each frame is refused by name (its id echoed), none silently.
    expect(pongs.length).toBeGreaterThanOrEqual(FRAMES_BURST);
    expect(limited.length).toBeGreaterThan(0);
    expect((limited[0] as { id?: string }).id).toMatch(/^p\d+$/);

    // Within the rate nothing is refused.
    const steady = await TestClient.connect(r1.ws, userToken(user('steady')));
    clients.push(steady);
    for (let i = 0; i < 30; i++) {
      expect(await steady.command({ type: 'ping', id: `s${i}` })).toMatchObject({ type: 'pong' });
      await holdFor('a frame of the rate budget to refill', FRAME_INTERVAL_MS);
    }
    expect(steady.frames.some((f) => f.type === 'error')).toBe(false);
  });

  it('never rate-limits the acks of a replay burst far larger than the frame burst', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const reader = user('replay');
    const published: Published[] = [];
    for (let i = 0; i < 300; i++) {
      const { id } = await publish(r2.http, { to: { users: [reader] }, event: 'backlog', payload: { i } });
      published.push({ id, userId: reader });
    }
    const client = await TestClient.connect(r1.ws, userToken(reader), { autoAck: true });
    clients.push(client);
    await waitFor('300 ack answers', () => client.frames.filter((f) => f.type === 'ack').length >= 300, 20_000);
    expect(client.frames.filter((f) => f.type === 'error')).toEqual([]);
    expect(client.closeCode).toBeNull();
    await assertNothingLost(cluster.db, published, new Map([[reader, client.notifications().map((n) => n.id)]]));
  });

  it('refuses a frame of acks whole, naming its ids, when it would pass the bound of acks in flight; a smaller one is answered', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const owner = user('acks-bound');
    const { id } = await publish(r2.http, { to: { users: [owner] }, event: 'bounded' });
    const client = await TestClient.connect(r1.ws, userToken(owner));
    clients.push(client);
    await client.notification(id);
    const tooMany = [id, ...Array.from({ length: MAX_QUEUED }, () => randomUUID())];
    client.send({ type: 'acks', ids: tooMany });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'RATE_LIMITED', ids: tooMany });
    expect((await cluster.deliveryOf(id, owner))?.status).not.toBe('acked');
    client.send({ type: 'acks', ids: tooMany.slice(0, MAX_QUEUED) });
    const answer = await client.next((f) => f.type === 'acks');
    expect(answer.type === 'acks' && answer.results.map((r) => r.status)).toEqual([
      'ok',
      ...Array<string>(MAX_QUEUED - 1).fill('forbidden'),
    ]);
    expect(await cluster.deliveryOf(id, owner)).toMatchObject({ status: 'acked' });
    // The free acks (1 sent + 1000 allowance) are used up: 200 more made-up ids cost 200 frames, past the burst.
    const beyond = Array.from({ length: 400 }, () => randomUUID());
    const from = client.frames.length;
    client.send({ type: 'acks', ids: beyond });
    expect(await client.next((f) => f.type === 'error', 10_000, from)).toMatchObject({
      code: 'RATE_LIMITED',
      ids: beyond,
    });
    expect(client.closeCode).toBeNull();
  });

  it('refuses a connection beyond the per-user cap across replicas with 1008, and takes one again when a slot frees', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const busy = user('busy');
    const held = [
      await TestClient.connect(r1.ws, userToken(busy)),
      await TestClient.connect(r2.ws, userToken(busy)),
      await TestClient.connect(r1.ws, userToken(busy)),
    ];
    clients.push(...held);
    const extra = await connectUntilClosed(r2.ws, userToken(busy));
    expect(extra).toEqual({ code: 1008, reason: `too many connections for this user (${PER_USER})`, welcomed: false });
    // A notification still reaches every held connection.
    const { id } = await publish(r2.http, { to: { users: [busy] }, event: 'still.here' });
    for (const client of held) await client.notification(id);
    await held[0]!.close();
    await waitFor('the freed slot', async () => {
      const probe = await connectUntilClosed(r2.ws, userToken(busy), 1500);
      return probe.welcomed && probe.code === null;
    });
  });

  it('answers 503 with Retry-After at the replica connection cap, for WebSocket and SSE alike', async () => {
    const small = await Replica.create('limits-cap', {
      databaseUrl: cluster.db.url,
      redisPrefix: cluster.redisPrefix,
      HERALD_MAX_CONNECTIONS: '2',
    });
    await small.start();
    try {
      const a = await TestClient.connect(small.ws, userToken(user('cap-a')));
      const b = await TestClient.connect(small.ws, userToken(user('cap-b')));
      clients.push(a, b);
      const refused = await upgradeResponse(`${small.ws}?token=${userToken(user('cap-c'))}`);
      expect(refused).toEqual({ status: 503, retryAfter: '1' });
      const stream = await fetch(`${small.http}/v1/stream`, {
        headers: { authorization: `Bearer ${userToken(user('cap-d'))}` },
      });
      expect(stream.status).toBe(503);
      expect(stream.headers.get('retry-after')).toBe('1');
      expect(await stream.json()).toMatchObject({ error: { code: 'UNAVAILABLE' } });
      await a.close();
      await waitFor(
        'a free slot',
        async () => (await upgradeResponse(`${small.ws}?token=${userToken(user('cap-e'))}`)).status === 101,
      );
    } finally {
      await small.stop();
    }
  });

  it('scopes idempotency keys per publisher, and answers 422 when one publisher reuses a key with another body', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const key = `order-${randomUUID()}`;
    const post = (base: string, apiKey: string, body: object) =>
      request<{ id?: string; error?: { code: string } }>(base, 'POST', '/v1/notifications', {
        body,
        apiKey,
        headers: { 'idempotency-key': key },
      });
    const first = await post(r1.http, TEST_API_KEY, { to: { users: [user('idem')] }, event: 'order.paid' });
    expect(first.status).toBe(202);
    // Another publisher's identical key is its own: a second notification, not a conflict.
    const other = await post(r2.http, SECOND_PUBLISHER_KEY, { to: { users: [user('idem')] }, event: 'other.thing' });
    expect(other.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
    const conflict = await post(r2.http, TEST_API_KEY, { to: { users: [user('idem')] }, event: 'order.refunded' });
    expect(conflict.status).toBe(422);
    expect(conflict.body.error).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    const rows = await cluster.db.query<{ n: string }>('SELECT count(*) AS n FROM notifications WHERE id = ANY($1)', [
      [first.body.id, other.body.id],
    ]);
    expect(Number(rows[0]!.n)).toBe(2);
  });

  it('refuses state-changing admin requests from another site (Origin / Sec-Fetch-Site), not same-origin ones', async () => {
    const [r1] = cluster.replicas as [Replica, Replica];
    const host = `127.0.0.1:${r1.port}`;
    const login = (headers: Record<string, string>) =>
      request<{ token?: string; error?: { code: string; message: string } }>(r1.http, 'POST', '/admin/api/login', {
        body: { password: TEST_ADMIN_PASSWORD },
        headers,
        apiKey: null,
      });
    const evil = await login({ origin: 'https://evil.test' });
    expect(evil.status).toBe(403);
    expect(evil.body.error?.code).toBe('FORBIDDEN');
    expect(evil.body.error?.message).toContain('cross-site');
    expect((await login({ 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await login({ origin: `http://127.0.0.1:${r1.port + 1}` })).status).toBe(403);
    const same = await login({ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' });
    expect(same.status).toBe(201);
    const token = same.body.token!;
    // With a valid session, a forged cross-site DELETE is still refused; reads are not affected.
    const target = await TestClient.connect(r1.ws, userToken(user('kept')));
    clients.push(target);
    const welcome = target.frames.find((f) => f.type === 'welcome')!;
    const forged = await request(r1.http, 'DELETE', `/admin/api/connections/${welcome.connectionId}`, {
      headers: { authorization: `Bearer ${token}`, origin: 'https://evil.test' },
      apiKey: null,
    });
    expect(forged.status).toBe(403);
    expect(target.closeCode).toBeNull();
    const read = await request(r1.http, 'GET', '/admin/api/stats', {
      headers: { authorization: `Bearer ${token}`, origin: 'https://evil.test' },
      apiKey: null,
    });
    expect(read.status).toBe(200);
  });
});

/** Nginx's own limits per client address, and its copy of the Origin allowlist. */
describe('Edge limits', () => {
  let cluster: TestCluster;
  let edge: Edge;
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    cluster = await TestCluster.start('edge-limits', 1, { HERALD_TRUSTED_PROXIES: '127.0.0.1' });
    edge = await Edge.start(
      cluster.replicas.map((r) => r.port),
      {
        allowedOrigins: ['https://app.example.com'],
        connectionsPerIp: 4,
        handshakesPerSecond: HANDSHAKES_PER_SECOND,
        handshakeBurst: HANDSHAKE_BURST,
      },
    );
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  it('refuses a disallowed Origin with 403 at Nginx, matched exactly on scheme, host and port', async () => {
    const token = userToken(user('origin'));
    for (const origin of [
      'http://app.example.com',
      'https://app.example.com:8443',
      'https://app.example.com.evil.test',
      'https://evil.test',
    ]) {
      const refused = await upgradeResponse(`${edge.ws}?token=${token}`, { origin });
      expect({ origin, status: refused.status }).toEqual({ origin, status: 403 });
    }
    const sse = await fetch(`${edge.http}/v1/stream`, {
      headers: { authorization: `Bearer ${token}`, origin: 'https://evil.test' },
    });
    expect(sse.status).toBe(403);
    expect(await sse.json()).toMatchObject({ error: { code: 'FORBIDDEN', message: 'Origin not allowed' } });
    // The refusals never reached a replica.
    expect(cluster.replicas[0]!.log()).not.toMatch(/upgrade refused.*evil/);
    await holdFor("a second of the handshake budget's refill", ONE_SECOND_REFILL_MS);
    const allowed = await TestClient.connect(edge.ws, token, { origin: 'https://app.example.com' });
    await allowed.close();
  });

  it('answers headers over its buffers with 400 and the JSON error body', async () => {
    for (const path of ['/v1/notifications', '/ws']) {
      const response = await fetch(`${edge.http}${path}`, { headers: { 'x-filler': 'f'.repeat(20 * 1024) } });
      expect({ path, status: response.status }).toEqual({ path, status: 400 });
      const body = (await response.json()) as { error?: { code?: string; requestId?: unknown } };
      expect(body.error?.code).toBe('BAD_REQUEST');
      expect(typeof body.error?.requestId).toBe('string');
    }
  });

  it('limits connections and handshakes per client address with 429 and Retry-After', async () => {
    await holdFor('the handshake budget to refill in full', FULL_REFILL_MS);
    const held: TestClient[] = [];
    try {
      for (let i = 0; i < 4; i++) held.push(await TestClient.connect(edge.ws, userToken(user(`ip${i}`))));
      const fifth = await upgradeResponse(`${edge.ws}?token=${userToken(user('ip-over'))}`);
      expect(fifth).toEqual({ status: 429, retryAfter: '1' });
      // Another address is its own budget.
      const other = await TestClient.connect(edge.ws, userToken(user('other-ip')), { localAddress: '127.0.0.2' });
      held.push(other);
    } finally {
      await Promise.all(held.map((c) => c.close()));
    }
    // Handshakes: a burst beyond rate + burst is refused, each with the JSON body.
    await holdFor('the handshake budget to refill in full', FULL_REFILL_MS);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const response = await fetch(`${edge.http}/ws`, { headers: { 'x-probe': String(i) } });
      statuses.push(response.status);
      if (response.status === 429) {
        expect(response.headers.get('retry-after')).toBe('1');
        expect(await response.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
      } else {
        await response.arrayBuffer();
      }
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(4);
    expect(statuses.slice(0, 6).every((s) => s !== 429)).toBe(true);
  });
});

/** Opens a socket and reports how it ended within `waitMs`: closed (with code) or still open (code null). */
async function connectUntilClosed(
  url: string,
  token: string,
  waitMs = 3000,
): Promise<{ code: number | null; reason: string; welcomed: boolean }> {
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(`${url}?token=${token}`);
  let welcomed = false;
  socket.on('message', (data: Buffer) => {
    if ((JSON.parse(data.toString()) as NotificationFrame | { type: string }).type === 'welcome') welcomed = true;
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve({ code: null, reason: '', welcomed });
    }, waitMs);
    socket.once('close', (code: number, reason: Buffer) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString(), welcomed });
    });
    socket.once('error', () => undefined);
  });
}

/** The HTTP status (and Retry-After) an upgrade request gets: 101 when it is accepted (then closed). */
async function upgradeResponse(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; retryAfter?: string }> {
  const { default: WebSocket } = await import('ws');
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('unexpected-response', (_req, res) => {
      const retryAfter = res.headers['retry-after'];
      resolve({ status: res.statusCode ?? 0, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) });
      socket.terminate();
    });
    socket.once('open', () => {
      socket.close();
      resolve({ status: 101 });
    });
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}
