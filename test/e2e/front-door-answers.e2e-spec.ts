import type { ApiErrorBody } from '@herald/protocol';
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { Edge } from '../helpers/edge';
import { HttpAnswer, rawUpgrade } from '../helpers/raw-ws';
import { Replica, TEST_ADMIN_PASSWORD, TEST_API_KEY, TEST_JWT_SECRET } from '../helpers/replica';
import { TestClient } from '../helpers/ws-client';

const ALLOWED_ORIGIN = 'https://app.example.com';
const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

/** What a test compares of an error answer: its status, its error body's code, whether it has a request id, and some headers. */
type Seen = Record<string, unknown>;

/** An error answer, as `Seen`: its status, the `headers` asked for (lower-case), and its JSON error body's code. */
function seen(status: number, headerOf: (name: string) => string | null | undefined, body: string, headers: string[]) {
  let parsed: Partial<ApiErrorBody> = {};
  try {
    parsed = JSON.parse(body) as ApiErrorBody;
  } catch {
    // Not JSON: `code` stays undefined, and the comparison shows it.
  }
  const answer: Seen = {
    status,
    code: parsed.error?.code,
    requestId: typeof parsed.error?.requestId === 'string' ? 'present' : 'missing',
  };
  for (const name of headers) answer[name] = headerOf(name) ?? undefined;
  return answer;
}

function seenRaw(answer: HttpAnswer, headers: string[]): Seen {
  return seen(answer.status, (name) => answer.headers[name], answer.body, headers);
}

/**
 * The front door's HTTP answers, through the bundled Nginx and at a replica: every 401 carries a Bearer
 * challenge (RFC 6750 §3), and every WebSocket handshake that does not become a socket gets an HTTP answer
 * with the REST API's JSON error body (RFC 6455 §4.2.2), never a dropped connection.
 */
describe('Front door answers', () => {
  let cluster: TestCluster;
  let edge: Edge;
  const replica = (): Replica => cluster.replicas[0]!;

  beforeAll(async () => {
    cluster = await TestCluster.start('answers', 1, {
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
      HERALD_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
      HERALD_ALLOWED_ORIGINS: ALLOWED_ORIGIN,
      // One socket fills the replica, so its 503 refusal can be seen (last test of the replica's answers).
      HERALD_MAX_CONNECTIONS: '1',
    });
    edge = await Edge.start([replica().port]);
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  it('answers every 401 with WWW-Authenticate: Bearer, naming invalid_token only when a credential was sent', async () => {
    const herald = 'Bearer realm="herald"';
    const invalid = 'Bearer realm="herald", error="invalid_token"';
    const token = userToken(user('challenge'));
    const expired = jwt.sign({ sub: 'late', exp: Math.floor(Date.now() / 1000) - 60 }, TEST_JWT_SECRET);
    const notification = { to: { users: ['nobody'] }, event: 'challenge.check' };
    // [what, method, path, credential (null: none), body, expected WWW-Authenticate]
    const cases: [string, string, string, string | null, unknown, string][] = [
      ['publish, no key (the fast lane)', 'POST', '/v1/notifications', null, notification, herald],
      ['publish, unknown key (the fast lane)', 'POST', '/v1/notifications', 'not-a-key-000000', notification, invalid],
      [
        'publish, unknown key (through Nest)',
        'POST',
        '/v1/notifications?via=nest',
        'not-a-key-00000',
        notification,
        invalid,
      ],
      ['publish, a user token', 'POST', '/v1/notifications', token, notification, invalid],
      ['notification state, no key', 'GET', `/v1/notifications/${randomUUID()}`, null, undefined, herald],
      ['mint a token, no key', 'POST', '/v1/tokens', null, { userId: 'alice' }, herald],
      ['mint a token, unknown key', 'POST', '/v1/tokens', 'not-a-key-000000', { userId: 'alice' }, invalid],
      ['SSE stream, no token', 'GET', '/v1/stream', null, undefined, herald],
      ['SSE stream, an API key', 'GET', '/v1/stream', TEST_API_KEY, undefined, invalid],
      ['SSE acks, forged token', 'POST', '/v1/acks', 'x.y.z', { ids: [randomUUID()] }, invalid],
      ['admin API, no session', 'GET', '/admin/api/stats', null, undefined, herald],
      ['admin API, a user token', 'GET', '/admin/api/connections', token, undefined, invalid],
      ['admin API, an API key', 'POST', '/admin/api/broadcasts', TEST_API_KEY, notification, invalid],
      ['mint a ticket, no token', 'POST', '/v1/tickets', null, undefined, herald],
      ['mint a ticket, an API key', 'POST', '/v1/tickets', TEST_API_KEY, undefined, invalid],
      ['mint an admin ticket, a user token', 'POST', '/admin/api/tickets', token, undefined, invalid],
    ];
    const got: Record<string, Seen> = {};
    const want: Record<string, Seen> = {};
    for (const [what, method, path, credential, body, challenge] of cases) {
      const answer = await request<unknown>(edge.http, method, path, {
        apiKey: credential,
        ...(body !== undefined ? { body } : {}),
      });
      got[what] = seen(answer.status, (n) => answer.headers.get(n), JSON.stringify(answer.body), [
        'www-authenticate',
        'x-herald-replica',
      ]);
      want[what] = {
        status: 401,
        code: 'UNAUTHORIZED',
        requestId: 'present',
        'www-authenticate': challenge,
        'x-herald-replica': replica().id,
      };
    }

    // The admin event stream takes its session as ?token= (EventSource cannot send headers).
    const events = await fetch(`${edge.http}/admin/api/events?token=not-a-session`);
    got['admin events, ?token= forged'] = seen(events.status, (n) => events.headers.get(n), await events.text(), [
      'www-authenticate',
    ]);
    want['admin events, ?token= forged'] = {
      status: 401,
      code: 'UNAUTHORIZED',
      requestId: 'present',
      'www-authenticate': invalid,
    };

    // A wrong admin password is not a wrong bearer token: the login's own realm, no error parameter.
    const login = await request<unknown>(edge.http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: 'not the password' },
    });
    got['admin login, wrong password'] = seen(login.status, (n) => login.headers.get(n), JSON.stringify(login.body), [
      'www-authenticate',
    ]);
    want['admin login, wrong password'] = {
      status: 401,
      code: 'UNAUTHORIZED',
      requestId: 'present',
      'www-authenticate': 'Bearer realm="herald-admin"',
    };

    // The WebSocket upgrade: the same challenge, the same JSON error body, before any socket.
    for (const [what, headers, challenge] of [
      ['WebSocket upgrade, no token', {}, herald],
      ['WebSocket upgrade, expired token', { authorization: `Bearer ${expired}` }, invalid],
    ] as const) {
      const { response } = await rawUpgrade(edge.ws, { headers });
      got[what] = seenRaw(response, ['www-authenticate', 'content-type']);
      want[what] = {
        status: 401,
        code: 'UNAUTHORIZED',
        requestId: 'present',
        'www-authenticate': challenge,
        'content-type': 'application/json; charset=utf-8',
      };
    }
    expect(got).toEqual(want);

    // Answers that are not 401 carry no challenge.
    const created = await request<unknown>(edge.http, 'POST', '/v1/tokens', { body: { userId: 'alice' } });
    expect(created.status).toBe(201);
    expect(created.headers.get('www-authenticate')).toBeNull();
  });

  it('answers at a replica every handshake it does not take, with the JSON error body: 426, 404, 400, 401, 403, 503', async () => {
    const base = `ws://127.0.0.1:${replica().port}`;
    const got: Record<string, Seen> = {};
    const want: Record<string, Seen> = {};
    const expectAnswer = (what: string, answer: Seen, expected: Seen) => {
      got[what] = answer;
      want[what] = { requestId: 'present', ...expected };
    };
    const upgradeHeaders = ['upgrade', 'sec-websocket-version', 'connection', 'x-herald-replica'];

    // A plain GET /ws: 426 Upgrade Required, naming the protocol to upgrade to.
    const plain = await fetch(`${replica().http}/ws`);
    expectAnswer(
      'plain GET /ws',
      seen(plain.status, (n) => plain.headers.get(n), await plain.text(), ['upgrade', 'sec-websocket-version']),
      {
        status: 426,
        code: 'UPGRADE_REQUIRED',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
      },
    );

    // /ws, but not a WebSocket handshake ws can take: another protocol, another version, a bad key.
    const h2c = await rawUpgrade(`${base}/ws`, { headers: { upgrade: 'h2c' } });
    expectAnswer('Upgrade: h2c to /ws', seenRaw(h2c.response, upgradeHeaders), {
      status: 426,
      code: 'UPGRADE_REQUIRED',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      connection: 'Upgrade, close',
      'x-herald-replica': replica().id,
    });
    const version = await rawUpgrade(`${base}/ws`, { headers: { 'sec-websocket-version': '12' } });
    expectAnswer('Sec-WebSocket-Version: 12 to /ws', seenRaw(version.response, upgradeHeaders), {
      status: 426,
      code: 'UPGRADE_REQUIRED',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      connection: 'Upgrade, close',
      'x-herald-replica': replica().id,
    });
    const badKey = await rawUpgrade(`${base}/ws`, { headers: { 'sec-websocket-key': 'short' } });
    expectAnswer('a bad Sec-WebSocket-Key to /ws', seenRaw(badKey.response, ['connection', 'x-herald-replica']), {
      status: 400,
      code: 'BAD_REQUEST',
      connection: 'close',
      'x-herald-replica': replica().id,
    });

    // An upgrade anywhere else: 404, never a dropped socket (rawUpgrade throws when no answer comes).
    for (const path of ['/', '/elsewhere', '/ws/', '/wsx', '/v1/notifications', '/health/live']) {
      const { response } = await rawUpgrade(`${base}${path}`);
      expectAnswer(`upgrade to ${path}`, seenRaw(response, ['connection', 'x-herald-replica', 'content-type']), {
        status: 404,
        code: 'NOT_FOUND',
        connection: 'close',
        'x-herald-replica': replica().id,
        'content-type': 'application/json; charset=utf-8',
      });
    }

    // Refusals of the handshake itself: the REST API's body and headers, no longer plain text.
    const noToken = await rawUpgrade(`${base}/ws`, { headers: { 'x-request-id': 'refused-401' } });
    expectAnswer('no token', seenRaw(noToken.response, ['www-authenticate', 'x-request-id']), {
      status: 401,
      code: 'UNAUTHORIZED',
      'www-authenticate': 'Bearer realm="herald"',
      'x-request-id': 'refused-401',
    });
    expect(JSON.parse(noToken.response.body)).toMatchObject({ error: { requestId: 'refused-401' } });
    const token = userToken(user('answers'));
    const foreign = await rawUpgrade(`${base}/ws`, {
      headers: { origin: 'https://evil.test', authorization: `Bearer ${token}` },
    });
    expectAnswer('a foreign Origin', seenRaw(foreign.response, ['content-type']), {
      status: 403,
      code: 'FORBIDDEN',
      'content-type': 'application/json; charset=utf-8',
    });

    // The replica's one connection is taken: the next upgrade is refused with 503 and Retry-After.
    const holder = await TestClient.connect(replica().ws, token);
    try {
      const full = await rawUpgrade(`${base}/ws`, { headers: { authorization: `Bearer ${token}` } });
      expectAnswer('replica at its connection limit', seenRaw(full.response, ['retry-after', 'content-type']), {
        status: 503,
        code: 'UNAVAILABLE',
        'retry-after': '1',
        'content-type': 'application/json; charset=utf-8',
      });
    } finally {
      await holder.close();
    }
    expect(got).toEqual(want);
  });

  it("gives an upgrade through Nginx to any other path that path's ordinary HTTP answer, never a dropped socket", async () => {
    const base = `ws://127.0.0.1:${edge.port}`;
    // The console's redirect at `/`, as a plain request gets it.
    const root = await rawUpgrade(`${base}/`);
    expect({ status: root.response.status, location: root.response.headers.location }).toEqual({
      status: 302,
      location: '/admin/',
    });

    const got: Record<string, unknown> = {};
    const want: Record<string, unknown> = {};
    // Nginx's own 404 (outside the API; /metrics stays internal), and the replica's (a route with no GET).
    for (const [path, fromReplica] of [
      ['/elsewhere', false],
      ['/ws/', false],
      ['/metrics', false],
      ['/v1/tokens', true],
      ['/admin/api/nothing-here', true],
    ] as const) {
      const { response } = await rawUpgrade(`${base}${path}`);
      got[path] = { ...seenRaw(response, []), replica: response.headers['x-herald-replica'] !== undefined };
      want[path] = { status: 404, code: 'NOT_FOUND', requestId: 'present', replica: fromReplica };
    }
    // A route that answers GET answers it, as to any request.
    const live = await rawUpgrade(`${base}/health/live`);
    got['/health/live'] = { status: live.response.status, body: JSON.parse(live.response.body) as unknown };
    want['/health/live'] = { status: 200, body: { status: 'ok' } };

    // /ws itself: a plain GET, and an upgrade to another protocol, get the replica's 426.
    const plain = await fetch(`${edge.http}/ws`);
    got['plain GET /ws'] = seen(plain.status, (n) => plain.headers.get(n), await plain.text(), ['upgrade']);
    want['plain GET /ws'] = { status: 426, code: 'UPGRADE_REQUIRED', requestId: 'present', upgrade: 'websocket' };
    const h2c = await rawUpgrade(`${base}/ws`, { headers: { upgrade: 'h2c' } });
    got['Upgrade: h2c to /ws'] = seenRaw(h2c.response, ['upgrade']);
    want['Upgrade: h2c to /ws'] = { status: 426, code: 'UPGRADE_REQUIRED', requestId: 'present', upgrade: 'websocket' };
    expect(got).toEqual(want);
  });
});
