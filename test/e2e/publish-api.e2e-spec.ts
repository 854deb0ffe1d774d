import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { ApiErrorBody, NotificationView, PublishResponse, TokenResponse } from '@herald/protocol';
import { publish, request, userToken } from '../helpers/api';
import { HERALD_MAIN } from '../helpers/paths';
import { TestCluster } from '../helpers/cluster';
import { PrivatePostgres } from '../helpers/private-postgres';
import { deleteRedisPrefix, testRedisPrefix } from '../helpers/redis';
import { Replica, TEST_API_KEY } from '../helpers/replica';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/** The REST surface: validation, auth, limits, paging, tokens, health, and a store that is down. */
describe('Publish API', () => {
  let cluster: TestCluster;
  const base = () => cluster.replicas[0]!.http;

  beforeAll(async () => {
    cluster = await TestCluster.start('api', 1, {
      HERALD_MAX_PAYLOAD_BYTES: '1024',
      HERALD_MAX_BODY_BYTES: '4096',
      HERALD_ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:4200',
      HERALD_MAX_QUEUED_COMMANDS: '20',
      // The flood test is about the command queue, not the frame rate (limits.e2e-spec.ts covers that).
      HERALD_CLIENT_FRAMES_BURST: '1000',
      HERALD_MAX_TOPICS_PER_USER: '5',
      HERALD_MAX_MESSAGE_BYTES: '1024',
    });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('answers 400 naming each bad field and stores nothing', async () => {
    const before = await cluster.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications');
    const cases: [unknown, string][] = [
      [{ event: 'x' }, 'to'],
      [{ to: { users: [] }, event: 'x' }, 'to.users'],
      [{ to: { users: ['ok', 'bad user'] }, event: 'x' }, 'to.users[1]'],
      [{ to: { users: ['a'], topic: 't' }, event: 'x' }, 'to'],
      [{ to: { topic: '' }, event: 'x' }, 'to.topic'],
      [{ to: { all: 'yes' }, event: 'x' }, 'to.all'],
      [{ to: { all: true } }, 'event'],
      [{ to: { all: true }, event: 'x', ttlSeconds: 0 }, 'ttlSeconds'],
      [{ to: { all: true }, event: 'x', ttlSeconds: 1.5 }, 'ttlSeconds'],
      [{ to: { all: true }, event: 'x', colour: 'red' }, 'colour'],
      [[1, 2], '(body)'],
    ];
    for (const [body, field] of cases) {
      const result = await request<ApiErrorBody>(base(), 'POST', '/v1/notifications', { body });
      expect({ field, status: result.status, code: result.body.error.code }).toEqual({
        field,
        status: 400,
        code: 'BAD_REQUEST',
      });
      expect(result.body.error.details?.map((d) => d.field)).toContain(field);
      expect(result.body.error.requestId).toBeTruthy();
    }
    const wrongType = await request<ApiErrorBody>(base(), 'POST', '/v1/notifications', {
      rawBody: '{"to":{"all":true},"event":"x"}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toMatch(/Content-Type: application\/json/);
    const malformed = await request<ApiErrorBody>(base(), 'POST', '/v1/notifications', { rawBody: '{"to":' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toMatch(/JSON/);
    const after = await cluster.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications');
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  it('answers 401 for a missing or unknown API key', async () => {
    const body = { to: { all: true }, event: 'x' };
    const missing = await request<ApiErrorBody>(base(), 'POST', '/v1/notifications', { body, apiKey: null });
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('UNAUTHORIZED');
    const wrong = await request<ApiErrorBody>(base(), 'POST', '/v1/notifications', {
      body,
      apiKey: 'wrong-key-0123456789abcdef',
    });
    expect(wrong.status).toBe(401);
    expect((await request(base(), 'GET', `/v1/notifications/${randomUUID()}`, { apiKey: null })).status).toBe(401);
  });

  it('answers 413 for a body or payload over the limit', async () => {
    const bigBody = await request<ApiErrorBody>(base(), 'POST', '/v1/notifications', {
      body: { to: { all: true }, event: 'x', payload: { blob: 'x'.repeat(5000) } },
    });
    expect(bigBody.status).toBe(413);
    expect(bigBody.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    const bigPayload = await request<ApiErrorBody>(base(), 'POST', '/v1/notifications', {
      body: { to: { all: true }, event: 'x', payload: { blob: 'x'.repeat(2000) } },
    });
    expect(bigPayload.status).toBe(413);
    expect(bigPayload.body.error.message).toMatch(/limit is 1024/);
  });

  it('pages the deliveries of a notification and counts them by status', async () => {
    const users = Array.from({ length: 5 }, (_, i) => `page-${i}-${randomUUID().slice(0, 6)}`);
    const { id } = await publish(base(), { to: { users: [...users, users[0]!] }, event: 'paged' });
    const first = await request<NotificationView>(base(), 'GET', `/v1/notifications/${id}?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.recipients).toBe(5);
    expect(first.body.counts).toEqual({ pending: 5, sent: 0, acked: 0, expired: 0, failed: 0 });
    expect(first.body.deliveries.items).toHaveLength(2);
    const seen = [...first.body.deliveries.items.map((d) => d.userId)];
    let cursor = first.body.deliveries.nextCursor;
    while (cursor) {
      const page = await request<NotificationView>(base(), 'GET', `/v1/notifications/${id}?limit=2&after=${cursor}`);
      seen.push(...page.body.deliveries.items.map((d) => d.userId));
      cursor = page.body.deliveries.nextCursor;
    }
    expect(seen).toEqual([...users].sort());
    expect((await request(base(), 'GET', `/v1/notifications/${id}?limit=0`)).status).toBe(400);
    expect((await request(base(), 'GET', `/v1/notifications/${randomUUID()}`)).status).toBe(404);
    expect((await request(base(), 'GET', `/v1/notifications/not-a-uuid`)).status).toBe(404);
  });

  it('mints user tokens that the gateway accepts, and refuses bad token requests', async () => {
    const minted = await request<TokenResponse>(base(), 'POST', '/v1/tokens', {
      body: { userId: 'minted-user', ttlSeconds: 60 },
    });
    expect(minted.status).toBe(201);
    expect(new Date(minted.body.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const client = await TestClient.connect(cluster.replicas[0]!.ws, minted.body.token);
    await client.close();
    const bad = await request<ApiErrorBody>(base(), 'POST', '/v1/tokens', {
      body: { userId: 'bad user', ttlSeconds: 10 ** 9 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details?.map((d) => d.field).sort()).toEqual(['ttlSeconds', 'userId']);
    expect((await request(base(), 'POST', '/v1/tokens', { body: { userId: 'u' }, apiKey: null })).status).toBe(401);
  });

  it('lets browsers connect only from an allowed Origin, matched exactly', async () => {
    const url = `${cluster.replicas[0]!.ws}?token=${userToken('browser-user')}`;
    for (const origin of [
      'https://evil.example.com',
      'http://app.example.com',
      'https://app.example.com:8443',
      'null',
    ]) {
      expect({ origin, status: await TestClient.refusedStatus(url, { origin }) }).toEqual({ origin, status: 403 });
    }
    const allowed = await TestClient.connect(cluster.replicas[0]!.ws, userToken('browser-user'), {
      origin: 'https://app.example.com',
    });
    await allowed.close();
    const noOrigin = await TestClient.connect(cluster.replicas[0]!.ws, userToken('server-user'));
    await noOrigin.close();
  });

  it('answers every command of a flood, refusing what overflows the queue with RATE_LIMITED', async () => {
    const client = await TestClient.connect(cluster.replicas[0]!.ws, userToken(`flood-${randomUUID().slice(0, 8)}`));
    try {
      const from = client.frames.length;
      for (let i = 0; i < 200; i++) client.send({ type: 'ack', id: randomUUID() });
      await waitFor('an answer to each of the 200 commands', () => client.frames.length - from >= 200);
      const answers = client.frames.slice(from) as { type: string; code?: string }[];
      const limited = answers.filter((f) => f.code === 'RATE_LIMITED').length;
      expect(limited).toBeGreaterThan(0);
      expect(answers.filter((f) => f.code === 'FORBIDDEN').length + limited).toBe(200);
      expect(await client.command({ type: 'ping', id: 'still-here' })).toMatchObject({ type: 'pong' });
    } finally {
      await client.close();
    }
  });

  it('closes with 1003 on a binary frame, 1009 on an oversized message and 1007 on invalid UTF-8', async () => {
    const open = () => TestClient.connect(cluster.replicas[0]!.ws, userToken(`frames-${randomUUID().slice(0, 8)}`));
    const binary = await open();
    binary.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await binary.waitClosed()).toBe(1003);
    const big = await open();
    big.send({ type: 'ping', id: 'x', pad: 'y'.repeat(2000) });
    expect(await big.waitClosed()).toBe(1009);
    const garbled = await open();
    garbled.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(await garbled.waitClosed()).toBe(1007);
  });

  it('limits the topics one user may hold', async () => {
    const client = await TestClient.connect(cluster.replicas[0]!.ws, userToken(`topical-${randomUUID().slice(0, 8)}`));
    try {
      for (let i = 0; i < 5; i++) {
        expect(await client.command({ type: 'subscribe', channel: `t${i}`, id: `s${i}` })).toMatchObject({
          status: 'ok',
        });
      }
      const refused = await client.command({ type: 'subscribe', channel: 't5', id: 's5' });
      expect(refused).toMatchObject({ type: 'error', code: 'BAD_REQUEST', id: 's5' });
      expect(await client.command({ type: 'subscribe', channel: 't0', id: 'again' })).toMatchObject({
        status: 'duplicate',
      });
    } finally {
      await client.close();
    }
  });

  it('reports liveness and readiness', async () => {
    expect((await request(base(), 'GET', '/health/live', { apiKey: null })).status).toBe(200);
    const ready = await request<{ status: string; checks: Record<string, string> }>(base(), 'GET', '/health/ready', {
      apiKey: null,
    });
    expect(ready.body).toMatchObject({ status: 'ok', checks: { postgres: 'up', redis: 'up' } });
  });

  it('echoes a given X-Request-Id and makes one when absent', async () => {
    const given = await request(base(), 'GET', '/health/live', {
      apiKey: null,
      headers: { 'x-request-id': 'trace-123' },
    });
    expect(given.headers.get('x-request-id')).toBe('trace-123');
    const made = await request(base(), 'GET', '/health/live', { apiKey: null });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers a publish alike on the fast lane and through Express, case by case', async () => {
    // The fast lane (publish-edge.ts) takes a plain JSON body with a Content-Length; a chunked body of the
    // same request goes through Express and Nest. Every case must get the same answer both ways.
    const send = (lane: 'fast' | 'express', body: string, headers: Record<string, string>) =>
      new Promise<{ status: number; body: ApiErrorBody & PublishResponse; headers: IncomingHttpHeaders }>(
        (resolve, reject) => {
          const req = httpRequest(`${base()}/v1/notifications`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(lane === 'fast' ? { 'content-length': String(Buffer.byteLength(body)) } : {}),
              ...headers,
            },
          });
          req.on('response', (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () =>
              resolve({
                status: res.statusCode!,
                body: JSON.parse(text) as ApiErrorBody & PublishResponse,
                headers: res.headers,
              }),
            );
          });
          req.on('error', reject);
          if (lane === 'express') req.write(body); // no Content-Length: Node sends it chunked
          req.end(lane === 'fast' ? body : undefined);
        },
      );
    const auth = { authorization: `Bearer ${TEST_API_KEY}` };
    const valid = JSON.stringify({ to: { users: ['parity'] }, event: 'parity', payload: { n: 1 } });
    const cases: [string, string, Record<string, string>][] = [
      ['valid', valid, auth],
      ['byte order mark', `\ufeff${valid}`, auth],
      ['charset', valid, { ...auth, 'content-type': 'application/json; charset=UTF-8' }],
      ['bad field', JSON.stringify({ to: { users: ['bad user'] }, event: 'x' }), auth],
      ['malformed', '{"to":', auth],
      ['not an object', ' 42', auth],
      ['empty', '', auth],
      ['no key', valid, {}],
      ['unknown key', valid, { authorization: 'Bearer wrong-key-0123456789abcdef' }],
      ['malformed, no key', '{"to":', {}],
    ];
    const refusedBodies = async () => {
      const text = await (await fetch(`${base()}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('herald_http_requests_total{') && l.includes('route="(body)"'));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const refusedBefore = await refusedBodies();
    for (const [index, [name, body, headers]] of cases.entries()) {
      const fast = await send('fast', body, { ...headers, 'x-request-id': `fast-${index}` });
      const slow = await send('express', body, headers);
      const shape = (answer: typeof fast) => ({
        name,
        status: answer.status,
        type: answer.headers['content-type'],
        replica: answer.headers['x-herald-replica'],
        error: answer.body.error && { ...answer.body.error, requestId: typeof answer.body.error.requestId },
        recipients: answer.body.recipients,
      });
      expect(shape(fast)).toEqual(shape(slow));
      expect(fast.headers['x-request-id']).toMatch(/^fast-\d+$/);
      expect(fast.body.error?.requestId ?? fast.headers['x-request-id']).toBe(fast.headers['x-request-id']);
    }
    // Malformed, not an object, malformed without a key: counted as refused bodies on both lanes.
    expect((await refusedBodies()) - refusedBefore).toBe(6);
    // Idempotency: the second answer names the first, on either lane.
    const key = { ...auth, 'idempotency-key': `parity-${randomUUID()}` };
    const first = await send('fast', valid, key);
    const again = await send('express', valid, key);
    const third = await send('fast', valid, key);
    expect([first.status, again.status, third.status]).toEqual([202, 202, 202]);
    expect([again.body.id, third.body.id]).toEqual([first.body.id, first.body.id]);
    expect([
      first.headers['idempotent-replayed'],
      again.headers['idempotent-replayed'],
      third.headers['idempotent-replayed'],
    ]).toEqual([undefined, 'true', 'true']);
    // What the fast lane accepted is stored, with its delivery.
    const stored = await cluster.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM deliveries d JOIN notifications n ON n.id = d.notification_id
        WHERE n.event = 'parity' AND d.user_id = 'parity'`,
    );
    expect(stored[0]!.n).toBe(2 * 3 + 1);
  });

  it('checks the API key of every request on a keep-alive connection, not only its first', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const body = JSON.stringify({ to: { users: ['keepalive'] }, event: 'x' });
    const post = (authorization: string | undefined) =>
      new Promise<{ status: number; port: number }>((resolve, reject) => {
        const req = httpRequest(`${base()}/v1/notifications`, {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': String(body.length),
            ...(authorization ? { authorization } : {}),
          },
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, port: req.socket!.localPort! }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const answers = [
        await post(`Bearer ${TEST_API_KEY}`),
        await post('Bearer wrong-key-0123456789abcdef'),
        await post(undefined),
        await post(`Bearer ${TEST_API_KEY}`),
      ];
      expect(answers.map((a) => a.status)).toEqual([202, 401, 401, 202]);
      expect(new Set(answers.map((a) => a.port)).size).toBe(1); // one connection throughout
    } finally {
      agent.destroy();
    }
  });

  it('answers 503 while PostgreSQL is down, writes nothing half-way, and recovers', async () => {
    const pg = await PrivatePostgres.create();
    const prefix = testRedisPrefix('pgdown');
    const replica = await Replica.create('api-pgdown', { databaseUrl: pg.url, redisPrefix: prefix });
    try {
      await replica.start();
      const ok = await request<PublishResponse>(replica.http, 'POST', '/v1/notifications', {
        body: { to: { users: ['a', 'b'] }, event: 'before' },
      });
      expect(ok.status).toBe(202);

      await pg.stop();
      const down = await request<ApiErrorBody>(replica.http, 'POST', '/v1/notifications', {
        body: { to: { users: ['a', 'b'] }, event: 'during' },
      });
      expect(down.status).toBe(503);
      expect(down.body.error.code).toBe('UNAVAILABLE');
      expect(down.headers.get('retry-after')).toBe('1');
      const read = await request<ApiErrorBody>(replica.http, 'GET', `/v1/notifications/${ok.body.id}`);
      expect(read.status).toBe(503);
      expect(read.body.error.code).toBe('UNAVAILABLE');
      const ready = await request<{ checks: { postgres: string } }>(replica.http, 'GET', '/health/ready', {
        apiKey: null,
      });
      expect(ready.status).toBe(503);
      expect(ready.body.checks.postgres).toBe('down');

      await pg.start();
      const recovered = await request<PublishResponse>(replica.http, 'POST', '/v1/notifications', {
        body: { to: { users: ['a'] }, event: 'after' },
      });
      expect(recovered.status).toBe(202);
      const { Client } = await import('pg');
      const client = new Client({ connectionString: pg.url });
      await client.connect();
      try {
        const events = (await client.query('SELECT event, recipients FROM notifications ORDER BY seq')).rows;
        expect(events).toEqual([
          { event: 'before', recipients: 2 },
          { event: 'after', recipients: 1 },
        ]);
        expect((await client.query<{ n: number }>('SELECT count(*)::int AS n FROM deliveries')).rows[0]!.n).toBe(3);
      } finally {
        await client.end();
      }
    } finally {
      await replica.stop().catch(() => undefined);
      await pg.destroy();
      await deleteRedisPrefix(prefix);
    }
  });
});

describe('Configuration', () => {
  it('refuses to start with a message naming every bad value', () => {
    const result = spawnSync(process.execPath, [HERALD_MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '70000',
        HERALD_ACK_TIMEOUT_MS: 'soon',
        DATABASE_URL: 'mysql://x',
        HERALD_JWT_SECRET: 'short',
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(78);
    for (const name of ['PORT', 'HERALD_ACK_TIMEOUT_MS', 'DATABASE_URL', 'HERALD_JWT_SECRET', 'HERALD_API_KEYS']) {
      expect(result.stderr).toContain(name);
    }
    expect(result.stderr).not.toContain('mysql://x');
  });
});
