import type { NotificationFrame, WelcomeFrame } from '@herald/protocol';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CONFIG_VARIABLES } from '../../apps/herald/src/config/config-variables';
import { publish, request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { Edge, nginxRender, nginxTest } from '../helpers/edge';
import { TEST_REDIS_URL } from '../helpers/env';
import { Replica } from '../helpers/replica';
import { holdFor, waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
const isWelcome = (f: { type: string }): f is WelcomeFrame => f.type === 'welcome';
/** Nginx's default proxy_read_timeout, which the rendered config raises for /ws. */
const NGINX_DEFAULT_READ_TIMEOUT_MS = 60_000;
/** A silence past it, with room for Nginx's timer to fire. */
const SILENCE_MS = NGINX_DEFAULT_READ_TIMEOUT_MS + 5_000;

/** What an upgrade attempt got: an HTTP refusal (with its Retry-After), an open socket, or a network error. */
function upgradeOutcome(url: string): Promise<{ status: number | 'open' | 'error'; retryAfter?: string }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0, retryAfter: String(response.headers['retry-after']) });
      socket.terminate();
    });
    socket.once('open', () => {
      resolve({ status: 'open' });
      socket.terminate();
    });
    socket.once('error', () => resolve({ status: 'error' }));
  });
}

async function welcomeOf(client: TestClient): Promise<WelcomeFrame> {
  return client.next(isWelcome);
}

describe('Front door: Nginx in front of two replicas', () => {
  let cluster: TestCluster;
  let edge: Edge;
  let redis: Redis;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    // A backlog other than the default, to see the setting reach listen(2).
    cluster = await TestCluster.start('edge', 2, {
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
      HERALD_LISTEN_BACKLOG: '2048',
    });
    edge = await Edge.start(cluster.replicas.map((r) => r.port));
    redis = new Redis(TEST_REDIS_URL);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  it('queues a burst of connects instead of dropping it: HERALD_LISTEN_BACKLOG at the replicas, 4096 at Nginx', () => {
    // A listening socket's Send-Q in ss is its backlog; Linux caps it at net.core.somaxconn.
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    const backlogs = (port: number) =>
      execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map((line) => Number(line.trim().split(/\s+/)[2]));
    for (const replica of cluster.replicas) expect(backlogs(replica.port)).toEqual([Math.min(2048, somaxconn)]);
    const edgeBacklogs = backlogs(edge.port);
    expect(edgeBacklogs.length).toBeGreaterThan(0);
    for (const backlog of edgeBacklogs) expect(backlog).toBe(Math.min(4096, somaxconn));
  });

  /** The presence entry Redis holds for a client's connection, once its replica wrote it. */
  async function presenceOf(client: TestClient): Promise<{ remoteAddress: string; userAgent: string }> {
    const welcome = await welcomeOf(client);
    const raw = await waitFor(
      `presence entry of ${welcome.connectionId}`,
      async () =>
        (await redis.hget(`${cluster.redisPrefix}:conns:${welcome.replicaId}`, welcome.connectionId)) ?? undefined,
    );
    return JSON.parse(raw) as { remoteAddress: string; userAgent: string };
  }

  afterAll(async () => {
    redis?.disconnect();
    await edge?.stop();
    await cluster?.stop();
  });

  it('renders one template for both targets, and nginx -t accepts both', () => {
    expect(nginxTest(edge.configFile)).toContain('test is successful');

    // The committed compose config is exactly what the template renders today.
    expect(readFileSync(nginxRender.COMPOSE_OUTPUT, 'utf8')).toBe(nginxRender.renderCompose());
    // (Its log paths are the nginx image's, under /var/log/nginx: run as root, as CI does.)
    expect(nginxTest(nginxRender.COMPOSE_OUTPUT)).toContain('test is successful');

    // The body limit is in step with the service's.
    expect(String(nginxRender.DEFAULT_MAX_BODY_BYTES)).toBe(CONFIG_VARIABLES.HERALD_MAX_BODY_BYTES.default);
    expect(nginxRender.WS_TIMEOUT).toBe('3600s');
  });

  it('upgrades /ws through the proxy; presence shows the client address, never a forged one', async () => {
    const alice = user('alice');
    const token = userToken(alice);
    const client = await TestClient.connect(edge.ws, token, {
      localAddress: '127.0.0.2',
      headers: { 'x-forwarded-for': '6.6.6.6', 'user-agent': 'front-door-test' },
    });
    clients.push(client);
    expect((await welcomeOf(client)).userId).toBe(alice);
    expect(await presenceOf(client)).toMatchObject({ remoteAddress: '127.0.0.2', userAgent: 'front-door-test' });

    // From the proxy's own address, a forged X-Forwarded-For is replaced by Nginx, not passed along.
    const local = await TestClient.connect(edge.ws, token, {
      localAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '6.6.6.6' },
    });
    clients.push(local);
    expect(await presenceOf(local)).toMatchObject({ remoteAddress: '127.0.0.1' });

    // Straight to a replica from an address that is not the proxy: X-Forwarded-For is not believed.
    const [r1] = cluster.replicas as [Replica, Replica];
    const direct = await TestClient.connect(r1.ws, token, {
      localAddress: '127.0.0.3',
      headers: { 'x-forwarded-for': '6.6.6.6' },
    });
    clients.push(direct);
    expect(await presenceOf(direct)).toMatchObject({ remoteAddress: '127.0.0.3' });

    // The access log has the request (written when the socket closes) but not the token in its query.
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await waitFor('access log line for /ws', () => edge.accessLog().includes('"GET /ws HTTP/1.1" 101'));
    expect(edge.accessLog()).not.toContain(token);
    expect(edge.accessLog()).not.toContain('token=');
  });

  it('delivers to a user on one replica a notification published through the proxy to the other', async () => {
    const bob = user('bob');
    const client = await TestClient.connect(edge.ws, userToken(bob));
    clients.push(client);
    const held = (await welcomeOf(client)).replicaId;

    const other = cluster.replicas.find((r) => r.id !== held)!;

    // The REST API has its own upstream (ADR 0014), balanced over both replicas whatever the WebSockets:
    // among a few publishes some land on the other replica and cross over Redis to reach him.
    const ids: string[] = [];
    const answeredBy = new Set<string | null>();
    for (let i = 0; i < 6; i++) {
      const result = await request<{ id: string }>(edge.http, 'POST', '/v1/notifications', {
        body: { to: { users: [bob] }, event: 'edge.test', payload: { i } },
      });
      expect(result.status).toBe(202);
      answeredBy.add(result.headers.get('x-herald-replica'));
      ids.push(result.body.id);
    }
    expect(answeredBy).toContain(other.id);
    for (const id of ids) await client.notification(id);
    expect(client.notifications().map((n) => n.id)).toEqual(ids);
  });

  it('keeps the service error body for limits the proxy enforces, and passes the request id through', async () => {
    const limit = nginxRender.DEFAULT_MAX_BODY_BYTES;
    const tooLarge = await request<{ error: { code: string; requestId: string } }>(
      edge.http,
      'POST',
      '/v1/notifications',
      {
        rawBody: JSON.stringify({ to: { users: ['x'] }, event: 'big', payload: { pad: 'x'.repeat(limit) } }),
        headers: { 'x-request-id': 'edge-too-large-1' },
      },
    );
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', requestId: 'edge-too-large-1' });
    expect(tooLarge.headers.get('x-herald-replica')).toBeNull(); // never reached a replica

    // Just under the proxy's limit (buffered to a temp file by Nginx): the service itself answers.
    const underLimit = await request<{ error: { code: string; requestId: string } }>(
      edge.http,
      'POST',
      '/v1/notifications',
      {
        rawBody: JSON.stringify({ to: { users: ['x'] }, event: 'big', payload: { pad: 'x'.repeat(limit - 200) } }),
        headers: { 'x-request-id': 'edge-under-limit-1' },
      },
    );
    expect(underLimit.status).toBe(413); // the payload limit (64 KiB) is the service's to enforce
    expect(underLimit.body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', requestId: 'edge-under-limit-1' });
    expect(underLimit.headers.get('x-herald-replica')).not.toBeNull();

    const unknown = await request<{ error: { code: string; requestId: string } }>(edge.http, 'GET', '/metrics', {
      apiKey: null,
      headers: { 'x-request-id': 'not"json' }, // not a sane id: replaced, so the body stays valid JSON
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
    expect(unknown.body.error.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(unknown.headers.get('x-herald-replica')).toBeNull(); // metrics stay off the internet

    // The API description and its browsable page, through the proxy.
    const described = await fetch(`${edge.http}/v1/openapi.json`);
    expect(described.status).toBe(200);
    expect(((await described.json()) as { openapi: string }).openapi).toMatch(/^3\./);
    const docs = await fetch(`${edge.http}/v1/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');

    const ready = await fetch(`${edge.http}/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/); // made by Nginx when the caller gave none
  });

  it('serves the console at /admin/ with security headers, and proxies the admin API', async () => {
    const page = await fetch(`${edge.http}/admin/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('admin console has not been built yet');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");

    // Client-side routes fall back to the app's index.html.
    const deep = await fetch(`${edge.http}/admin/connections/some-user`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('Herald admin console');
    const bare = await fetch(`${edge.http}/admin`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toMatch(/\/admin\/$/);

    const api = await fetch(`${edge.http}/admin/api/anything`);
    expect(api.headers.get('x-herald-replica')).not.toBeNull();
    expect(api.status).toBe(404);
  });

  it('a draining replica refuses new sockets with 503 before the upgrade and reports not ready; Nginx sends them to the other', async () => {
    const [r1, r2] = cluster.replicas as [Replica, Replica];
    const token = userToken(user('erin'));
    // Sockets held by r1 give its drain some work (each is closed 1001).
    const held = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(r1.ws, token)));
    const stopping = r1.stop();
    try {
      const seen = await waitFor(
        'r1 to report draining and refuse an upgrade',
        async () => {
          const ready = await fetch(`${r1.http}/health/ready`);
          const report = (await ready.json()) as { status: string };
          if (ready.status !== 503 || report.status !== 'draining') return undefined;
          const outcome = await upgradeOutcome(`${r1.ws}?token=${encodeURIComponent(token)}`);
          return outcome.status === 503 ? outcome : undefined;
        },
        5_000,
        5,
      );
      expect(seen.retryAfter).toBe('1');
      const via = await TestClient.connect(edge.ws, token);
      clients.push(via);
      expect((await welcomeOf(via)).replicaId).toBe(r2.id);
      for (const client of held) expect(await client.waitClosed()).toBe(1001);
      expect(await stopping).toBe(0);
    } finally {
      await r1.start();
    }
  });

  // Last: it kills a replica.
  it('after SIGKILL of the replica holding a client, the client reconnects through Nginx to the survivor and gets every unacked notification', async () => {
    const carol = user('carol');
    const first = await TestClient.connect(edge.ws, userToken(carol));
    clients.push(first);
    const held = (await welcomeOf(first)).replicaId;
    const victim = cluster.replicas.find((r) => r.id === held)!;
    const survivor = cluster.replicas.find((r) => r.id !== held)!;

    const before: string[] = [];
    for (let i = 0; i < 5; i++) {
      before.push((await publish(edge.http, { to: { users: [carol] }, event: 'before', payload: { i } })).id);
    }
    for (const id of before) await first.notification(id);
    await first.ack(before[0]!);
    await first.ack(before[1]!);

    await victim.kill();
    await first.waitClosed();

    // Publishing goes on through the proxy: the dead replica is skipped.
    const during: string[] = [];
    for (let i = 0; i < 6; i++) {
      const result = await request<{ id: string }>(edge.http, 'POST', '/v1/notifications', {
        body: { to: { users: [carol] }, event: 'during', payload: { i } },
      });
      expect(result.status).toBe(202);
      expect(result.headers.get('x-herald-replica')).toBe(survivor.id);
      during.push(result.body.id);
    }

    const second = await TestClient.connect(edge.ws, userToken(carol));
    clients.push(second);
    expect((await welcomeOf(second)).replicaId).toBe(survivor.id);
    const expected = [...before.slice(2), ...during];
    for (const id of expected) await second.notification(id);
    const received = second.notifications().map((n: NotificationFrame) => n.id);
    expect(new Set(received)).toEqual(new Set(expected));
    expect(received).not.toContain(before[0]);
    expect(received).not.toContain(before[1]);
    for (const id of expected) expect(await second.ack(id)).toMatchObject({ status: 'ok' });
    for (const id of expected) expect(await cluster.deliveryOf(id, carol)).toMatchObject({ status: 'acked' });

    // Nginx noticed the dead replica, and its error log does not quote the tokens of the /ws requests.
    expect(edge.errorLog()).toContain('connect() failed');
    expect(edge.errorLog()).not.toContain('token=');
  });
});

describe('Front door: the WebSocket read timeout', () => {
  let cluster: TestCluster;
  let edge: Edge;

  beforeAll(async () => {
    // Server pings every 2 minutes: nothing crosses the socket while the test waits.
    cluster = await TestCluster.start('edge-idle', 1, {
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
      HERALD_HEARTBEAT_MS: '120000',
    });
    edge = await Edge.start(cluster.replicas.map((r) => r.port));
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  it("keeps a silent socket open past Nginx's default 60 s read timeout", async () => {
    const dave = user('dave');
    const client = await TestClient.connect(edge.ws, userToken(dave), { autoPong: false });
    try {
      // Only time shows a timeout that does not fire: nothing crosses the socket meanwhile.
      await holdFor("a silence past Nginx's default read timeout", SILENCE_MS);
      expect(client.closeCode).toBeNull();
      const { id } = await publish(edge.http, { to: { users: [dave] }, event: 'after-silence', payload: {} });
      await client.notification(id);
    } finally {
      await client.close();
    }
  }, 120_000);
});
