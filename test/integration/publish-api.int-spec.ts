import { randomUUID } from 'node:crypto';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { ApiErrorBody, NotificationView, PublishResponse, TokenResponse } from '@herald/protocol';
import { publish, request, userToken } from '../helpers/api';
import { InProcessHerald } from '../helpers/in-process';
import { parseMetrics } from '../helpers/metrics';
import { TEST_API_KEY } from '../helpers/replica';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/**
 * The REST surface and the socket's edge, the app in-process against real PostgreSQL and Redis: validation,
 * auth, limits, paging, tokens, health. A PostgreSQL that stops and a bad config's exit code are
 * test/e2e/publish-api.e2e-spec.ts.
 */
describe('Publish API', () => {
  let herald: InProcessHerald;
  const base = () => herald.http;

  beforeAll(async () => {
    herald = await InProcessHerald.start('api', {
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
    await herald?.stop();
  });

  it('answers 400 naming each bad field and stores nothing', async () => {
    const before = await herald.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications');
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
    const after = await herald.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications');
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
    // A credential: no cache may keep it.
    expect(minted.headers.get('cache-control')).toBe('no-store');
    expect(new Date(minted.body.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const client = await TestClient.connect(herald.ws, minted.body.token);
    await client.close();
    const bad = await request<ApiErrorBody>(base(), 'POST', '/v1/tokens', {
      body: { userId: 'bad user', ttlSeconds: 10 ** 9 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details?.map((d) => d.field).sort()).toEqual(['ttlSeconds', 'userId']);
    expect((await request(base(), 'POST', '/v1/tokens', { body: { userId: 'u' }, apiKey: null })).status).toBe(401);
  });

  it('mints tickets only for a user token in Authorization: an API key or a token in the URL gets 401', async () => {
    const minted = await request<{ ticket: string }>(base(), 'POST', '/v1/tickets', { apiKey: userToken('alice') });
    expect(minted.status).toBe(201);
    expect(minted.headers.get('cache-control')).toBe('no-store');
    const apiKey = await request(base(), 'POST', '/v1/tickets', { apiKey: TEST_API_KEY });
    expect(apiKey.status).toBe(401);
    expect(apiKey.headers.get('www-authenticate')).toBe('Bearer realm="herald", error="invalid_token"');
    const inUrl = await request(base(), 'POST', `/v1/tickets?token=${userToken('alice')}`, { apiKey: null });
    expect(inUrl.status).toBe(401);
    expect(inUrl.headers.get('www-authenticate')).toBe('Bearer realm="herald"');
  });

  it('lets browsers connect only from an allowed Origin, matched exactly', async () => {
    const url = `${herald.ws}?token=${userToken('browser-user')}`;
    for (const origin of [
      'https://evil.example.com',
      'http://app.example.com',
      'https://app.example.com:8443',
      'null',
    ]) {
      expect({ origin, status: await TestClient.refusedStatus(url, { origin }) }).toEqual({ origin, status: 403 });
    }
    const allowed = await TestClient.connect(herald.ws, userToken('browser-user'), {
      origin: 'https://app.example.com',
    });
    await allowed.close();
    const noOrigin = await TestClient.connect(herald.ws, userToken('server-user'));
    await noOrigin.close();
  });

  it('answers every command of a flood, refusing what overflows the queue with RATE_LIMITED', async () => {
    const client = await TestClient.connect(herald.ws, userToken(`flood-${randomUUID().slice(0, 8)}`));
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
    const open = () => TestClient.connect(herald.ws, userToken(`frames-${randomUUID().slice(0, 8)}`));
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
    const client = await TestClient.connect(herald.ws, userToken(`topical-${randomUUID().slice(0, 8)}`));
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

  it('serves /metrics in the Prometheus text format, uncached, every series labelled with the replica', async () => {
    const response = await fetch(`${base()}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const text = await response.text();
    const samples = parseMetrics(text);
    expect(samples.has('herald_connections')).toBe(true);
    expect(samples.get('herald_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(samples.get('herald_queue_jobs{queue="sweep",state="failed"}')).toBe(0);
    expect(text).toContain(`replica="${herald.id}"`);
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

  it('answers a publish alike with a Content-Length and chunked, case by case', async () => {
    // One pipeline (ADR 0022): a body with a Content-Length and the same body chunked (no length) take the
    // same route, body rules and guard. Every case must get the same answer both ways.
    const send = (lane: 'fast' | 'chunked', body: string, headers: Record<string, string>) =>
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
          if (lane === 'chunked') req.write(body); // no Content-Length: Node sends it chunked
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
      const slow = await send('chunked', body, headers);
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
    const again = await send('chunked', valid, key);
    const third = await send('fast', valid, key);
    expect([first.status, again.status, third.status]).toEqual([202, 202, 202]);
    expect([again.body.id, third.body.id]).toEqual([first.body.id, first.body.id]);
    expect([
      first.headers['idempotent-replayed'],
      again.headers['idempotent-replayed'],
      third.headers['idempotent-replayed'],
    ]).toEqual([undefined, 'true', 'true']);
    // What was accepted either way is stored, with its delivery.
    const stored = await herald.db.query<{ n: number }>(
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
});
