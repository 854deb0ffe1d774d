import { WS_BEARER_PREFIX, WS_SUBPROTOCOL, type AdminSession, type TicketResponse } from '@herald/protocol';
import WebSocket from 'ws';
import { request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { Edge } from '../helpers/edge';
import { moved, scrape } from '../helpers/metrics';
import { TEST_ADMIN_PASSWORD } from '../helpers/replica';
import { TestClient } from '../helpers/ws-client';
import { waitFor } from '../helpers/wait';

const APP = 'https://app.example.com';
const OTHER_APP = 'https://other.example.com';

interface Upgrade {
  status: number;
  body: string;
  wwwAuthenticate?: string;
  welcome?: { type: string; userId: string };
  /** The subprotocol the 101 named ('' for none). */
  protocol?: string;
}

/**
 * Opens `/ws?ticket=` (or any URL, offering `protocols` when given) and answers the refusal, or the welcome
 * of the opened socket.
 */
function upgrade(url: string, origin?: string, protocols?: string[]): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const options = origin ? { headers: { origin } } : {};
    const socket = protocols ? new WebSocket(url, protocols, options) : new WebSocket(url, options);
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          body,
          wwwAuthenticate: response.headers['www-authenticate'],
        }),
      );
    });
    socket.once('message', (data: Buffer) => {
      socket.close();
      resolve({
        status: 101,
        body: '',
        welcome: JSON.parse(data.toString('utf8')) as Upgrade['welcome'],
        protocol: socket.protocol,
      });
    });
    socket.once('error', reject);
  });
}

/** One-time connection tickets (issue 23): minted on one replica, used once on another, through Nginx too. */
describe('Connection tickets', () => {
  let cluster: TestCluster;
  let edge: Edge;
  const [r1, r2] = [() => cluster.replicas[0]!, () => cluster.replicas[1]!];

  beforeAll(async () => {
    cluster = await TestCluster.start('tickets', 2, {
      HERALD_ALLOWED_ORIGINS: `${APP},${OTHER_APP}`,
      HERALD_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
      HERALD_TICKET_MINTS_PER_MINUTE: '12',
    });
    edge = await Edge.start(cluster.replicas.map((r) => r.port));
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  const mint = (base: string, token: string | null, origin?: string, path = '/v1/tickets') =>
    request<TicketResponse & { error?: { code: string; message: string } }>(base, 'POST', path, {
      apiKey: token,
      headers: origin ? { origin } : {},
    });

  it('opens /ws once on the other replica, then refuses it like a bad token', async () => {
    const before = await scrape([r1().http, r2().http]);
    const minted = await mint(r1().http, userToken('alice'), APP);
    expect(minted.status).toBe(201);
    expect(minted.headers.get('cache-control')).toBe('no-store');
    expect(minted.body.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const validFor = Date.parse(minted.body.expiresAt) - Date.now();
    expect(validFor).toBeGreaterThan(25_000);
    expect(validFor).toBeLessThanOrEqual(31_000);

    const first = await upgrade(`${r2().ws}?ticket=${minted.body.ticket}`, APP);
    expect(first.status).toBe(101);
    expect(first.welcome).toMatchObject({ type: 'welcome', userId: 'alice' });

    const again = await upgrade(`${r1().ws}?ticket=${minted.body.ticket}`, APP);
    expect(again.status).toBe(401);
    const refusal = JSON.parse(again.body) as { error: { code: string; message: string } };
    expect(refusal.error.code).toBe('UNAUTHORIZED');
    expect(refusal.error.message).toContain('invalid ticket');
    expect(again.wwwAuthenticate).toBe('Bearer realm="herald", error="invalid_token"');

    const after = await scrape([r1().http, r2().http]);
    const counts = moved(before, after, [
      'herald_tickets_total{audience="user",outcome="minted"}',
      'herald_tickets_total{audience="user",outcome="used"}',
      'herald_tickets_total{audience="user",outcome="refused-unknown"}',
    ]);
    expect(Object.values(counts)).toEqual([1, 1, 1]);
    // Neither replica logged the ticket, and Nginx keeps no query strings.
    for (const replica of cluster.replicas) expect(replica.log()).not.toContain(minted.body.ticket);
  });

  it('opens the SSE stream once, through Nginx, and keeps it out of the access log', async () => {
    const minted = await mint(edge.http, userToken('dave'), APP);
    const controller = new AbortController();
    const stream = await fetch(`${edge.http}/v1/stream?ticket=${minted.body.ticket}`, {
      headers: { origin: APP },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    controller.abort();
    const again = await fetch(`${edge.http}/v1/stream?ticket=${minted.body.ticket}`, { headers: { origin: APP } });
    expect(again.status).toBe(401);
    // Preflight for the mint from the app's origin: the same CORS as the stream.
    const preflight = await fetch(`${edge.http}/v1/tickets`, {
      method: 'OPTIONS',
      headers: {
        origin: APP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(APP);
    // A ticket on another end-user route is a mistake, said so.
    const acks = await request(edge.http, 'POST', `/v1/acks?ticket=${minted.body.ticket}`, {
      apiKey: userToken('dave'),
      body: { ids: [] },
    });
    expect(acks.status).toBe(400);
    // Nginx writes a line when a request ends: both streams, the preflight and the acks are in before we read.
    await waitFor('Nginx to log the streams, the preflight and the acks', () => {
      const log = edge.accessLog();
      return (
        log.split('GET /v1/stream ').length > 2 &&
        log.includes('OPTIONS /v1/tickets ') &&
        log.includes('POST /v1/acks ')
      );
    });
    expect(edge.accessLog()).toContain('GET /v1/stream ');
    expect(edge.accessLog()).not.toContain('ticket=');
  });

  it('keeps the ticket when the upgrade or the stream is shed for load, and holds the cap while tickets are checked', async () => {
    const full = await TestCluster.start('tickets-full', 1, { HERALD_MAX_CONNECTIONS: '2' });
    try {
      const replica = full.replicas[0]!;
      const first = await TestClient.connect(replica.ws, userToken('dora'));
      // One place left and five tickets at once: exactly one gets it, whatever Redis's timing.
      const racing = await Promise.all(
        Array.from({ length: 5 }, async (_, i) => {
          const t = await mint(replica.http, userToken(`racer${i}`));
          return t.body.ticket;
        }),
      );
      const raced = await Promise.all(racing.map((t) => upgrade(`${replica.ws}?ticket=${t}`)));
      expect(raced.map((r) => r.status).sort()).toEqual([101, 503, 503, 503, 503]);
      await first.close();
      await waitFor(
        'the replica to count every closed connection out',
        async () => (await scrape([replica.http])).get('herald_connections') === 0,
      );
      const holder = await TestClient.connect(replica.ws, userToken('erin'));
      const holder2 = await TestClient.connect(replica.ws, userToken('erin2'));
      const minted = await mint(replica.http, userToken('frank'));
      expect((await upgrade(`${replica.ws}?ticket=${minted.body.ticket}`)).status).toBe(503);
      expect((await fetch(`${replica.http}/v1/stream?ticket=${minted.body.ticket}`)).status).toBe(503);
      await holder2.close();
      await holder.close();
      // Until the replica has counted the holder out it may still shed: each shed leaves the ticket alone.
      const opened = await waitFor(
        'the ticket to be taken once the holders are counted out',
        async () => {
          const outcome = await upgrade(`${replica.ws}?ticket=${minted.body.ticket}`);
          return outcome.status !== 503 && outcome;
        },
        10_000,
        100,
      );
      expect(opened.status).toBe(101);
      expect(opened.welcome?.userId).toBe('frank');
    } finally {
      await full.stop();
    }
  });

  it('gives the admin stream its own tickets, which open nothing else', async () => {
    const login = await request<AdminSession>(r1().http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: TEST_ADMIN_PASSWORD },
    });
    const minted = await mint(r1().http, login.body.token, undefined, '/admin/api/tickets');
    expect(minted.status).toBe(201);
    expect(minted.headers.get('cache-control')).toBe('no-store');
    const controller = new AbortController();
    const events = await fetch(`${r2().http}/admin/api/events?ticket=${minted.body.ticket}`, {
      signal: controller.signal,
    });
    expect(events.status).toBe(200);
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    controller.abort();
    expect((await fetch(`${r2().http}/admin/api/events?ticket=${minted.body.ticket}`)).status).toBe(401);

    // An admin ticket does not open /ws, and a user ticket does not open the admin stream.
    const admin = await mint(r1().http, login.body.token, undefined, '/admin/api/tickets');
    expect((await upgrade(`${r2().ws}?ticket=${admin.body.ticket}`)).status).toBe(401);
    const user = await mint(r1().http, userToken('alice'));
    expect((await fetch(`${r2().http}/admin/api/events?ticket=${user.body.ticket}`)).status).toBe(401);
    // User tokens cannot mint admin tickets.
    expect((await mint(r1().http, userToken('alice'), undefined, '/admin/api/tickets')).status).toBe(401);
  });

  it('limits minting per user across replicas', async () => {
    const token = userToken('greedy');
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) statuses.push((await mint(i % 2 ? r1().http : r2().http, token)).status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(12);
    const refused = await mint(r1().http, token);
    expect(refused.status).toBe(429);
    expect(refused.body.error?.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another user has their own budget.
    expect((await mint(r1().http, userToken('modest'))).status).toBe(201);
  });

  describe('the token in Sec-WebSocket-Protocol (ADR 0013)', () => {
    const bearer = (token: string) => [WS_SUBPROTOCOL, `${WS_BEARER_PREFIX}${token}`];

    it('opens /ws through Nginx in one request, names only herald.v1 in the 101, and logs no token', async () => {
      const token = userToken('proto-alice');
      const opened = await upgrade(`${edge.ws}`, APP, bearer(token));
      expect(opened.status).toBe(101);
      expect(opened.welcome).toMatchObject({ type: 'welcome', userId: 'proto-alice' });
      expect(opened.protocol).toBe('herald.v1');
      // A header wins over the subprotocol, as over the query.
      const both = await new Promise<Upgrade>((resolve, reject) => {
        const socket = new WebSocket(edge.ws, bearer(userToken('proto-mallory')), {
          headers: { authorization: `Bearer ${userToken('proto-bob')}` },
        });
        socket.once('message', (data: Buffer) => {
          socket.close();
          resolve({ status: 101, body: '', welcome: JSON.parse(data.toString('utf8')) as Upgrade['welcome'] });
        });
        socket.once('error', reject);
      });
      expect(both.welcome!.userId).toBe('proto-bob');
      await waitFor(
        'the upgrades in the access log',
        async () => (edge.accessLog().match(/GET \/ws /g) ?? []).length >= 2,
      );
      const log = edge.accessLog();
      expect(log).not.toContain(token);
      expect(log).not.toContain('herald.bearer');
    });

    it('refuses a bad token like Authorization does (401, invalid_token), and a foreign Origin with 403', async () => {
      const forged = await upgrade(`${edge.ws}`, APP, bearer(userToken('proto-eve').slice(0, -2) + 'xx'));
      expect(forged.status).toBe(401);
      expect(forged.wwwAuthenticate).toBe('Bearer realm="herald", error="invalid_token"');
      const expired = await upgrade(r1().ws, undefined, bearer(userToken('proto-eve', -60)));
      expect(expired.status).toBe(401);
      expect(JSON.parse(expired.body)).toMatchObject({ error: { code: 'UNAUTHORIZED', message: 'token expired' } });
      const foreign = await upgrade(r2().ws, 'https://evil.example.com', bearer(userToken('proto-eve')));
      expect(foreign.status).toBe(403);
    });

    it('names no subprotocol for a client that offers none Herald speaks, which the client then refuses', async () => {
      const socket = new WebSocket(r1().ws, ['chat.v2', `${WS_BEARER_PREFIX}${userToken('proto-carol')}`]);
      const error = await new Promise<Error>((resolve) => socket.once('error', resolve));
      expect(error.message).toBe('Server sent no subprotocol');
    });
  });
});
