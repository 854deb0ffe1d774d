import { randomUUID } from 'node:crypto';
import type { AcksResponse, ApiErrorBody, NotificationFrame, WelcomeFrame } from '@herald/protocol';
import WebSocket from 'ws';
import { HeraldClient, HeraldClientOptions, Notification } from '../../libs/client/src';
import { publish, request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { TEST_API_KEY } from '../helpers/replica';
import { readEventStream } from '../helpers/sse';
import { waitFor } from '../helpers/wait';

/** What an app's handler saw, by notification id. */
class Inbox {
  readonly counts = new Map<string, number>();
  readonly order: number[] = [];

  readonly handler = (n: Notification): void => {
    this.counts.set(n.id, (this.counts.get(n.id) ?? 0) + 1);
    this.order.push(n.seq);
  };

  has(ids: string[]): boolean {
    return ids.every((id) => this.counts.has(id));
  }
}

/** A raw SSE reader, to test the stream itself (resume, events) without the SDK. */
async function openStream(base: string, token: string, lastEventId?: number) {
  const controller = new AbortController();
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
  const response = await fetch(`${base}/v1/stream`, { headers, signal: controller.signal });
  const stream = {
    frames: [] as NotificationFrame[],
    events: [] as string[],
    status: response.status,
    welcome: undefined as WelcomeFrame | undefined,
    ended: false,
    close: () => controller.abort(),
  };
  if (!response.ok) return stream;
  const state = readEventStream(response, (event, data) => {
    stream.events.push(event);
    if (event === 'notification') stream.frames.push(JSON.parse(data) as NotificationFrame);
    if (event === 'welcome') stream.welcome = JSON.parse(data) as WelcomeFrame;
  });
  return Object.defineProperty(stream, 'ended', { get: () => state.ended });
}

describe('Client SDK against real replicas', () => {
  let cluster: TestCluster;
  const clients: HeraldClient[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const r1 = () => cluster.replicas[0]!;
  const r2 = () => cluster.replicas[1]!;
  const start = (options: Partial<HeraldClientOptions> & { url: string }) => {
    const client = new HeraldClient({
      WebSocket,
      backoff: { initialMs: 200, maxMs: 1000 },
      ...options,
    });
    clients.push(client);
    return client;
  };
  const opened = (client: HeraldClient) =>
    new Promise<void>((resolve) => {
      const off = client.on('open', () => {
        off();
        resolve();
      });
    });
  const statusOf = async (ids: string[], userId: string) =>
    cluster.db.query<{ notification_id: string; status: string }>(
      'SELECT notification_id, status FROM deliveries WHERE user_id = $1 AND notification_id = ANY($2::uuid[])',
      [userId, ids],
    );

  beforeAll(async () => {
    cluster = await TestCluster.start('client');
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('reconnects by itself when its replica is killed and restarted, and the handler sees every notification exactly once', async () => {
    const alice = user('alice');
    const inbox = new Inbox();
    const client = start({ url: r1().ws, token: userToken(alice) });
    client.onNotification(inbox.handler);
    const reconnects: number[] = [];
    client.on('reconnecting', (e) => reconnects.push(e.delayMs));
    const first = opened(client);
    client.connect();
    await first;

    const before: string[] = [];
    for (let i = 0; i < 10; i++)
      before.push((await publish(r2().http, { to: { users: [alice] }, event: 'e', payload: { i } })).id);
    await waitFor('the first ten', () => inbox.has(before));

    await r1().kill();
    // Published through the other replica while the client has nowhere to connect.
    const during: string[] = [];
    for (let i = 0; i < 10; i++)
      during.push((await publish(r2().http, { to: { users: [alice] }, event: 'e', payload: { i } })).id);
    await waitFor('a reconnect attempt', () => reconnects.length >= 2);
    expect(client.readyState).toBe(HeraldClient.CONNECTING);
    const again = opened(client);
    await r1().start();
    await again;
    const after: string[] = [];
    for (let i = 0; i < 10; i++)
      after.push((await publish(r2().http, { to: { users: [alice] }, event: 'e', payload: { i } })).id);

    const all = [...before, ...during, ...after];
    await waitFor('all thirty', () => inbox.has(all), 20_000);
    await waitFor(
      'every delivery acked',
      async () => (await statusOf(all, alice)).every((r) => r.status === 'acked') && true,
    );
    expect([...inbox.counts.values()].every((n) => n === 1)).toBe(true);
    expect(inbox.counts.size).toBe(30);
    // The ones published while it was away arrived after the reconnect, in seq order.
    const duringSeqs = inbox.order.slice(10, 20);
    expect(duringSeqs).toEqual([...duringSeqs].sort((a, b) => a - b));
    // Jittered backoff, not an instant storm.
    expect(Math.min(...reconnects)).toBeGreaterThanOrEqual(100);
  }, 60_000);

  it('refreshes its token in-band before it expires and keeps the same connection', async () => {
    const bob = user('bob');
    const firstToken = userToken(bob, 3);
    const firstExpiresAt =
      (JSON.parse(Buffer.from(firstToken.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
    // At each heartbeat the server closes a connection whose token has expired, and pings the others.
    const pings: number[] = [];
    class HeartbeatWatch extends WebSocket {
      constructor(url: string, protocols?: string[]) {
        super(url, protocols);
        this.on('ping', () => pings.push(Date.now()));
      }
    }
    let issued = 0;
    const client = start({
      url: r1().ws,
      WebSocket: HeartbeatWatch,
      token: firstToken,
      getToken: () => {
        issued++;
        return userToken(bob, 3600);
      },
      tokenRefreshBeforeMs: 2000,
    });
    const reconnecting = jest.fn();
    client.on('reconnecting', reconnecting);
    const first = opened(client);
    client.connect();
    await first;
    const connectionId = client.connection!.connectionId;
    // Past the first token's expiry: two pings after it (heartbeats 1 s apart), so the second was sent after it.
    await waitFor(
      "two heartbeats past the first token's expiry",
      () => pings.filter((at) => at > firstExpiresAt).length >= 2,
    );
    expect(issued).toBe(1);
    expect(reconnecting).not.toHaveBeenCalled();
    expect(client.connection?.connectionId).toBe(connectionId);
    const inbox = new Inbox();
    client.onNotification(inbox.handler);
    const { id } = await publish(r2().http, { to: { users: [bob] }, event: 'still-here' });
    await waitFor('a notification after the refresh', () => inbox.has([id]));
  }, 20_000);

  it('refuses an in-band token for another user, and one that is forged', async () => {
    const carol = user('carol');
    const socket = new WebSocket(`${r1().ws}?token=${userToken(carol)}`);
    const frames: Record<string, unknown>[] = [];
    socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
    await waitFor('welcome', () => frames.some((f) => f.type === 'welcome'));
    socket.send(JSON.stringify({ type: 'auth', token: userToken('mallory'), id: 'a1' }));
    socket.send(JSON.stringify({ type: 'auth', token: userToken(carol, 60, 'x'.repeat(40)), id: 'a2' }));
    await waitFor('two answers', () => frames.filter((f) => f.type === 'error').length === 2);
    expect(frames.filter((f) => f.type === 'error')).toEqual([
      expect.objectContaining({ code: 'FORBIDDEN', id: 'a1' }),
      expect.objectContaining({ code: 'UNAUTHORIZED', id: 'a2', message: 'invalid token' }),
    ]);
    socket.close();
  });

  it('streams over Server-Sent Events and acks over POST /v1/acks, the same notifications', async () => {
    const dave = user('dave');
    const inbox = new Inbox();
    const client = start({ url: r1().ws, token: userToken(dave), transport: 'sse' });
    client.onNotification(inbox.handler);
    const first = opened(client);
    client.connect();
    await first;
    expect(client.transport).toBe('sse');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await publish(r2().http, { to: { users: [dave] }, event: 'sse', payload: { i } })).id);
    await waitFor('five over SSE', () => inbox.has(ids));
    await waitFor(
      'acked over POST',
      async () => (await statusOf(ids, dave)).every((r) => r.status === 'acked') && true,
    );
    expect(inbox.order).toEqual([...inbox.order].sort((a, b) => a - b));
  });

  it('falls back to SSE by itself when the WebSocket upgrade keeps failing', async () => {
    const erin = user('erin');
    const inbox = new Inbox();
    const client = start({
      // A path that refuses upgrades, as a proxy that blocks WebSockets would.
      url: `ws://127.0.0.1:${r1().port}/blocked/ws`,
      ticketsUrl: `${r1().http}/v1/tickets`,
      streamUrl: `${r1().http}/v1/stream`,
      acksUrl: `${r1().http}/v1/acks`,
      token: userToken(erin),
      backoff: { initialMs: 50, maxMs: 100 },
    });
    client.onNotification(inbox.handler);
    const first = opened(client);
    client.connect();
    await first;
    expect(client.transport).toBe('sse');
    const { id } = await publish(r2().http, { to: { users: [erin] }, event: 'fallback' });
    await waitFor('the notification over the fallback', () => inbox.has([id]));
  });

  it('resumes an SSE stream after Last-Event-ID, and still redelivers the unacked ones before it', async () => {
    const frank = user('frank');
    const token = userToken(frank);
    const first = await openStream(r1().http, token);
    expect(first.status).toBe(200);
    const a = await publish(r2().http, { to: { users: [frank] }, event: 'a' });
    const b = await publish(r2().http, { to: { users: [frank] }, event: 'b' });
    await waitFor('a and b', () => first.frames.length >= 2);
    first.close();
    await cluster.waitParked(a.id, frank);
    const c = await publish(r2().http, { to: { users: [frank] }, event: 'c' });

    const resumed = await openStream(r1().http, token, b.seq);
    await waitFor('c on the resumed stream', () => resumed.frames.some((f) => f.id === c.id));
    // Not replayed at once: the client said it has them.
    expect(resumed.frames.map((f) => f.id)).toEqual([c.id]);
    // Never acked, so they come again on the redelivery schedule: nothing is lost.
    await waitFor(
      'a and b redelivered',
      () => [a.id, b.id].every((id) => resumed.frames.some((f) => f.id === id)),
      10_000,
    );
    expect(resumed.events[0]).toBe('welcome');
    resumed.close();
  });

  it('ends an SSE stream whose client stopped answering heartbeats, and keeps one that never opted in', async () => {
    const ivan = user('ivan');
    const token = userToken(ivan);
    const quiet = await openStream(r1().http, token);
    const answering = await openStream(r1().http, token);
    await waitFor('both welcomes', () => quiet.welcome !== undefined && answering.welcome !== undefined);
    // One answer opts the stream in, through the other replica (routed over Redis to the one holding it).
    const pong = await request<ApiErrorBody>(r2().http, 'POST', '/v1/stream/pong', {
      apiKey: token,
      body: { connectionId: answering.welcome!.connectionId },
    });
    expect(pong.status).toBe(204);
    // Then silence: ended within two heartbeats (1 s here), while the stream that never answered stays.
    await waitFor('the silent stream to be ended', () => answering.ended, 5000);
    expect(quiet.ended).toBe(false);
    // Another user's pong does not keep a stream alive: it is looked for among that user's connections only.
    const other = await request<ApiErrorBody>(r1().http, 'POST', '/v1/stream/pong', {
      apiKey: userToken(user('mallory')),
      body: { connectionId: quiet.welcome!.connectionId },
    });
    expect(other).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    // Once the user has no connection left anywhere, a pong says so: the client reconnects.
    quiet.close();
    await waitFor('a 404 for the ended stream', async () => {
      const gone = await request<ApiErrorBody>(r2().http, 'POST', '/v1/stream/pong', {
        apiKey: token,
        body: { connectionId: answering.welcome!.connectionId },
      });
      return gone.status === 404;
    });
  });

  it('lets a browser app on an allowed origin use the stream and the acks across origins (CORS)', async () => {
    const preflight = await fetch(`${r1().http}/v1/stream`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization, last-event-id',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('Authorization, Content-Type, Last-Event-ID');
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    const acks = await request<AcksResponse>(r1().http, 'POST', '/v1/acks', {
      apiKey: userToken(user('henry')),
      headers: { origin: 'https://app.example.com' },
      body: { ids: [randomUUID()] },
    });
    expect(acks.status).toBe(200);
    expect(acks.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(acks.headers.get('vary')).toContain('Origin');
  });

  it('answers bad stream and ack requests with clear errors', async () => {
    const gina = user('gina');
    const token = userToken(gina);
    const noToken = await request<ApiErrorBody>(r1().http, 'GET', '/v1/stream', { apiKey: null });
    expect(noToken.status).toBe(401);
    expect(noToken.body.error.message).toBe('Missing token');
    const apiKey = await request<ApiErrorBody>(r1().http, 'POST', '/v1/acks', {
      apiKey: TEST_API_KEY,
      body: { ids: ['x'] },
    });
    expect(apiKey).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
    const badResume = await request<ApiErrorBody>(r1().http, 'GET', '/v1/stream', {
      apiKey: token,
      headers: { 'last-event-id': 'yesterday' },
    });
    expect(badResume).toMatchObject({ status: 400, body: { error: { details: [{ field: 'Last-Event-ID' }] } } });
    const badBody = await request<ApiErrorBody>(r1().http, 'POST', '/v1/acks', {
      apiKey: token,
      body: { ids: [], x: 1 },
    });
    expect(badBody.status).toBe(400);
    expect(badBody.body.error.details?.map((d) => d.field).sort()).toEqual(['ids', 'x']);

    const owner = user('owner');
    const theirs = await publish(r2().http, { to: { users: [owner] }, event: 'private' });
    const acks = await request<AcksResponse>(r1().http, 'POST', '/v1/acks', {
      apiKey: token,
      body: { ids: [theirs.id, randomUUID(), 'not-a-uuid'] },
    });
    expect(acks.status).toBe(200);
    expect(acks.body.results.map((r) => r.status)).toEqual(['forbidden', 'forbidden', 'forbidden']);
    expect((await statusOf([theirs.id], owner))[0]?.status).not.toBe('acked');

    const demoOff = await request<ApiErrorBody>(r1().http, 'POST', '/v1/demo/tokens', {
      apiKey: null,
      body: { userId: 'anyone' },
    });
    expect(demoOff).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    expect(demoOff.body.error.message).toContain('HERALD_DEMO_TOKENS=true');
  });
});
