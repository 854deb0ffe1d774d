import { randomUUID } from 'node:crypto';
import type {
  AdminSession,
  AdminWebhookAttemptsResponse,
  AdminWebhooksResponse,
  ApiErrorBody,
  WebhookEndpoint,
  WebhookEndpointCreated,
  WebhookExpiredItem,
  WebhookRecipientItem,
  WebhookSecret,
} from '@herald/protocol';
import { verify } from '../../apps/herald/src/webhooks/signature';
import { publish, request, userToken, type HttpResult } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { startDnsServer, type DnsServer } from '../helpers/dns-server';
import { Edge } from '../helpers/edge';
import { Replica, TEST_ADMIN_PASSWORD, TEST_API_KEY } from '../helpers/replica';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { deleteRedisPrefix, testRedisPrefix } from '../helpers/redis';
import { holdFor, waitFor } from '../helpers/wait';
import { WebhookReceiver, type ReceivedWebhook } from '../helpers/webhook-receiver';
import { TestClient } from '../helpers/ws-client';

const OTHER_API_KEY = 'other-publisher-key-9876543210';

/**
 * Delivery webhooks (issue 30) on two replicas behind Nginx, with a real HTTP receiver on 127.0.0.1 (the one
 * range these replicas allow, HERALD_WEBHOOK_ALLOWED_CIDRS=127.0.0.1/32) and a DNS server of the test's own
 * (HERALD_WEBHOOK_DNS_SERVER) that points names at private addresses: signatures, batching, retries with one
 * `webhook-id`, disabling, a publisher's own events only, callback URLs, and every refusal of the guard.
 */
describe('Delivery webhooks across two replicas behind Nginx', () => {
  let cluster: TestCluster;
  let edge: Edge;
  let receiver: WebhookReceiver;
  let dns: DnsServer;
  let admin: string;
  const clients: TestClient[] = [];
  const endpoints: string[] = [];
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  const api = <T>(method: string, path: string, body?: unknown, apiKey = TEST_API_KEY): Promise<HttpResult<T>> =>
    request<T>(edge.http, method, path, { apiKey, ...(body !== undefined ? { body } : {}) });

  /** An endpoint at `path` of the receiver; deleted after each test. */
  const endpoint = async (path: string, events: string[], apiKey = TEST_API_KEY): Promise<WebhookEndpointCreated> => {
    const created = await api<WebhookEndpointCreated>(
      'POST',
      '/v1/webhooks',
      { url: receiver.url(path), events },
      apiKey,
    );
    expect(created.status).toBe(201);
    endpoints.push(created.body.id);
    // Every replica reads the endpoints again within a second (ADR 0027).
    await holdFor('both replicas to read the new endpoint', 1200);
    return created.body;
  };

  const connect = async (userId: string, autoAck = true): Promise<TestClient> => {
    const client = await TestClient.connect(edge.ws, userToken(userId), { via: 'header', autoAck });
    clients.push(client);
    return client;
  };

  const items = (requests: ReceivedWebhook[]) =>
    requests.flatMap((r) => r.event.data.items as (WebhookRecipientItem | WebhookExpiredItem)[]);

  const signedBy = (secret: string, r: ReceivedWebhook) =>
    verify(
      secret,
      {
        id: String(r.headers['webhook-id']),
        timestamp: String(r.headers['webhook-timestamp']),
        signature: String(r.headers['webhook-signature']),
      },
      r.body,
      Math.floor(Date.now() / 1000),
    );

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    dns = await startDnsServer({
      'receiver.test': '127.0.0.1',
      'private.test': '10.0.0.1',
      'metadata.test': '169.254.169.254',
      'loopback.test': '127.0.0.2',
    });
    cluster = await TestCluster.start('webhooks', 2, {
      HERALD_API_KEYS: `${TEST_API_KEY},${OTHER_API_KEY}`,
      HERALD_PUBLISHER_LIMITS: '',
      HERALD_TRUSTED_PROXIES: '127.0.0.1',
      HERALD_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
      HERALD_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      HERALD_WEBHOOK_DNS_SERVER: `127.0.0.1:${dns.port}`,
      HERALD_WEBHOOK_RETRY_MS: '300',
      HERALD_WEBHOOK_RETRY_HOURS: '0.01',
      HERALD_WEBHOOK_DISABLE_AFTER_HOURS: '0.001',
      HERALD_WEBHOOK_TIMEOUT_MS: '2000',
    });
    edge = await Edge.start(cluster.replicas.map((r) => r.port));
    const login = await request<AdminSession>(edge.http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: TEST_ADMIN_PASSWORD },
    });
    admin = login.body.token;
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const id of endpoints.splice(0)) {
      await api('DELETE', `/v1/webhooks/${id}`);
      await api('DELETE', `/v1/webhooks/${id}`, undefined, OTHER_API_KEY);
    }
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
    await receiver?.stop();
    await dns?.close();
  });

  it('signs each request (Standard Webhooks) and reports the first ack of each recipient once, for its own publisher only', async () => {
    const mine = await endpoint('/acks', ['notification.acked']);
    const theirs = await endpoint('/other-acks', ['notification.acked'], OTHER_API_KEY);
    const [ann, bob] = [user('ann'), user('bob')];
    await connect(ann);
    await connect(bob);
    const { id } = await publish(edge.http, { to: { users: [ann, bob] }, event: 'order.shipped', payload: { n: 1 } });
    const other = await request<{ id: string }>(edge.http, 'POST', '/v1/notifications', {
      apiKey: OTHER_API_KEY,
      body: { to: { users: [ann] }, event: 'other.thing' },
    });
    expect(other.status).toBe(202);

    const acked = await waitFor('both acks reported', () => {
      const got = items(receiver.on('/acks')).filter((i) => i.notificationId === id);
      return got.length >= 2 && got;
    });
    expect(acked.map((i) => (i as WebhookRecipientItem).userId).sort()).toEqual([ann, bob].sort());
    expect(acked.every((i) => i.event === 'order.shipped')).toBe(true);
    for (const r of receiver.on('/acks')) {
      expect(r.event.type).toBe('notification.acked');
      expect(r.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(signedBy(mine.secret, r)).toBe(true);
      expect(signedBy(theirs.secret, r)).toBe(false);
    }
    // The other key's endpoint hears only of the other key's notification, and this one never of it.
    await waitFor('the other publisher told of its own', () =>
      items(receiver.on('/other-acks')).some((i) => i.notificationId === other.body.id),
    );
    expect(items(receiver.on('/other-acks')).every((i) => i.notificationId === other.body.id)).toBe(true);
    expect(items(receiver.on('/acks')).some((i) => i.notificationId === other.body.id)).toBe(false);

    // A repeated ack is a duplicate, not a second event.
    expect(await clients[0]!.ack(id)).toMatchObject({ type: 'ack', status: 'duplicate' });
    await holdFor('a batch to pass', 2500);
    expect(items(receiver.on('/acks')).filter((i) => i.notificationId === id)).toHaveLength(2);
  });

  it('batches the acks of a broadcast: one request a second at most per endpoint, every recipient once', async () => {
    await endpoint('/broadcast', ['notification.acked']);
    const topic = `deals-${randomUUID().slice(0, 8)}`;
    const users = Array.from({ length: 150 }, (_, i) => user(`fan${i}`));
    for (const u of users) {
      const client = await connect(u);
      expect(await client.command({ type: 'subscribe', channel: topic, id: 's' })).toMatchObject({ type: 'ack' });
    }
    const { id, recipients } = await publish(edge.http, { to: { topic }, event: 'deal' });
    expect(recipients).toBe(150);
    const got = await waitFor(
      'every ack reported',
      () => {
        const all = items(receiver.on('/broadcast')).filter((i) => i.notificationId === id);
        return all.length >= 150 && all;
      },
      20_000,
    );
    expect(new Set(got.map((i) => (i as WebhookRecipientItem).userId))).toEqual(new Set(users));
    expect(got).toHaveLength(150);
    const requests = receiver.on('/broadcast');
    // Fewer requests than acks, each at most 1 000 items, and never two in the same second.
    expect(requests.length).toBeLessThan(10);
    for (const r of requests) expect(r.event.data.items.length).toBeLessThanOrEqual(1000);
    for (let i = 1; i < requests.length; i++) expect(requests[i]!.at - requests[i - 1]!.at).toBeGreaterThan(700);
  });

  it('retries after 500s with the same webhook-id and body, and stops once answered', async () => {
    let failures = 2;
    receiver.answer('/flaky', () => (failures-- > 0 ? { status: 500 } : { status: 204 }));
    await endpoint('/flaky', ['notification.acked']);
    const ann = user('ann');
    await connect(ann);
    const { id } = await publish(edge.http, { to: { users: [ann] }, event: 'retry.me' });
    await waitFor('the third try', () => receiver.on('/flaky').length >= 3, 15_000);
    const tries = receiver.on('/flaky');
    expect(new Set(tries.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(new Set(tries.map((r) => r.body)).size).toBe(1);
    expect(items(tries.slice(0, 1))).toEqual([expect.objectContaining({ notificationId: id, userId: ann })]);
    await holdFor('any further try', 2000);
    expect(receiver.on('/flaky')).toHaveLength(3);
  });

  it('disables an endpoint that keeps failing, with the reason on the API and the console; enabling sends what it kept', async () => {
    let down = true;
    receiver.answer('/down', () => ({ status: down ? 503 : 200 }));
    const created = await endpoint('/down', ['notification.acked']);
    const ann = user('ann');
    await connect(ann);
    const first = await publish(edge.http, { to: { users: [ann] }, event: 'while.down' });
    const disabled = await waitFor(
      'the endpoint disabled',
      async () => {
        const got = await api<WebhookEndpoint>('GET', `/v1/webhooks/${created.id}`);
        return got.body.enabled === false && got.body;
      },
      20_000,
    );
    expect(disabled.disabledReason).toMatch(/^disabled after failing for .* h; last error: HTTP 503/);
    const console = await request<AdminWebhooksResponse>(edge.http, 'GET', '/admin/api/webhooks', {
      apiKey: null,
      headers: { authorization: `Bearer ${admin}` },
    });
    const row = console.body.items.find((e) => e.id === created.id)!;
    expect(row).toMatchObject({ enabled: false, disabledReason: disabled.disabledReason, pendingMessages: 1 });
    expect(row.lastAttempt).toMatchObject({ outcome: 'http', statusCode: 503 });
    const attempts = await request<AdminWebhookAttemptsResponse>(
      edge.http,
      'GET',
      `/admin/api/webhooks/${created.id}/attempts?limit=5`,
      { apiKey: null, headers: { authorization: `Bearer ${admin}` } },
    );
    expect(attempts.body.items.length).toBeGreaterThan(1);
    expect(attempts.body.items[0]).toMatchObject({ outcome: 'http', statusCode: 503, type: 'notification.acked' });

    // Disabled: nothing new is tried. Enabled again, it gets what it kept.
    const triesWhileDisabled = receiver.on('/down').length;
    await holdFor('a retry that would come', 1500);
    expect(receiver.on('/down')).toHaveLength(triesWhileDisabled);
    down = false;
    const enabled = await api<WebhookEndpoint>('POST', `/v1/webhooks/${created.id}/enable`);
    expect(enabled.body).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    await waitFor('the kept message delivered', () =>
      items(receiver.on('/down').slice(triesWhileDisabled)).some((i) => i.notificationId === first.id),
    );
  });

  it('sends a publish’s events to its callbackUrl, signed with the key’s default secret; refuses one without that secret', async () => {
    const ann = user('ann');
    const refused = await request<ApiErrorBody>(edge.http, 'POST', '/v1/notifications', {
      apiKey: OTHER_API_KEY,
      body: { to: { users: [ann] }, event: 'cb', callbackUrl: receiver.url('/callback') },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toContain('POST /v1/webhooks/default-secret');

    const secret = await api<WebhookSecret>('POST', '/v1/webhooks/default-secret');
    expect(secret.status).toBe(200);
    await connect(ann);
    const { id } = await request<{ id: string }>(edge.http, 'POST', '/v1/notifications', {
      body: { to: { users: [ann] }, event: 'cb', callbackUrl: receiver.url('/callback') },
    }).then((r) => r.body);
    const got = await waitFor('the callback', () =>
      receiver.on('/callback').find((r) => items([r]).some((i) => i.notificationId === id)),
    );
    expect(got.event.type).toBe('notification.acked');
    expect(signedBy(secret.body.secret, got)).toBe(true);
  });

  it('reports a delivery given up, an inbox read, and an expiry with its counts', async () => {
    await endpoint('/life', ['notification.failed', 'notification.read', 'notification.expired']);
    const [mute, reader, away] = [user('mute'), user('reader'), user('away')];
    await connect(mute, false); // never acks: given up after HERALD_REDELIVERY_MAX_ATTEMPTS
    const failed = await publish(edge.http, { to: { users: [mute] }, event: 'ignored' });
    const expiring = await publish(edge.http, { to: { users: [away] }, event: 'short', ttlSeconds: 1 });
    const read = await publish(edge.http, { to: { users: [reader] }, event: 'to.read' });
    const marked = await request(edge.http, 'POST', '/v1/me/read', {
      apiKey: null,
      headers: { authorization: `Bearer ${userToken(reader)}` },
      body: { ids: [read.id] },
    });
    expect(marked.status).toBe(200);

    const byType = async (type: string) =>
      waitFor(`${type} reported`, () => receiver.on('/life').find((r) => r.event.type === type), 15_000);
    expect(items([await byType('notification.failed')])).toContainEqual(
      expect.objectContaining({ notificationId: failed.id, userId: mute, event: 'ignored' }),
    );
    expect(items([await byType('notification.read')])).toContainEqual(
      expect.objectContaining({ notificationId: read.id, userId: reader }),
    );
    expect(items([await byType('notification.expired')])).toContainEqual(
      expect.objectContaining({
        notificationId: expiring.id,
        event: 'short',
        recipients: 1,
        acked: 0,
        failed: 0,
        expired: 1,
      }),
    );
  });

  it('refuses private, loopback, link-local and metadata targets, by address and by a name resolving to them, and follows no redirect', async () => {
    const refusedUrls = [
      'http://10.0.0.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://127.0.0.2/hook',
      'http://[::1]/hook',
      'http://[::ffff:10.0.0.1]/hook',
      `http://private.test:${receiver.port}/hook`,
      `http://metadata.test:${receiver.port}/hook`,
      `http://loopback.test:${receiver.port}/hook`,
    ];
    for (const url of refusedUrls) {
      const got = await api<ApiErrorBody>('POST', '/v1/webhooks', { url, events: ['notification.acked'] });
      expect([url, got.status]).toEqual([url, 400]);
      expect(got.body.error.details?.[0]?.field).toBe('url');
    }
    const metadata = await api<ApiErrorBody>('POST', '/v1/webhooks', {
      url: 'http://169.254.169.254/',
      events: ['notification.acked'],
    });
    expect(metadata.body.error.message).toMatch(/169\.254\.169\.254/);

    // A name that resolved to the allowed receiver when registered, and to the metadata address at the try:
    // refused at connect time (DNS rebinding).
    const rebound = await api<WebhookEndpointCreated>('POST', '/v1/webhooks', {
      url: `http://receiver.test:${receiver.port}/rebound`,
      events: ['notification.acked'],
    });
    expect(rebound.status).toBe(201);
    endpoints.push(rebound.body.id);
    // A redirect to a path of the receiver that must never be hit.
    receiver.answer('/redirect', () => ({ status: 302, headers: { location: receiver.url('/redirect-target') } }));
    const redirecting = await endpoint('/redirect', ['notification.acked']);
    dns.set('receiver.test', '169.254.169.254');
    const ann = user('ann');
    await connect(ann);
    await publish(edge.http, { to: { users: [ann] }, event: 'guarded' });
    const attemptsOf = async (id: string) =>
      (
        await request<AdminWebhookAttemptsResponse>(edge.http, 'GET', `/admin/api/webhooks/${id}/attempts`, {
          apiKey: null,
          headers: { authorization: `Bearer ${admin}` },
        })
      ).body.items;
    const refusedTry = await waitFor('the rebound try refused', async () => (await attemptsOf(rebound.body.id))[0]);
    expect(refusedTry).toMatchObject({ outcome: 'refused' });
    expect(refusedTry.error).toMatch(/169\.254\.169\.254/);
    expect(receiver.on('/rebound')).toHaveLength(0);
    const redirectTry = await waitFor('the redirect try', async () => (await attemptsOf(redirecting.id))[0]);
    expect(redirectTry).toMatchObject({ outcome: 'redirect', statusCode: 302 });
    expect(receiver.on('/redirect-target')).toHaveLength(0);
    dns.set('receiver.test', '127.0.0.1');
  });

  it('answers bad requests with exact errors: events, URL, another key’s endpoint, the 11th endpoint', async () => {
    const bad = await api<ApiErrorBody>('POST', '/v1/webhooks', { url: 'ftp://x.example', events: ['nope'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details?.map((d) => d.field).sort()).toEqual(['events[0]', 'url']);
    const withUser = await api<ApiErrorBody>('POST', '/v1/webhooks', {
      url: 'https://user:pw@example.com/',
      events: ['notification.acked'],
    });
    expect(withUser.status).toBe(400);
    const mine = await endpoint('/mine', ['notification.acked']);
    for (const [method, path] of [
      ['GET', `/v1/webhooks/${mine.id}`],
      ['PATCH', `/v1/webhooks/${mine.id}`],
      ['DELETE', `/v1/webhooks/${mine.id}`],
      ['POST', `/v1/webhooks/${mine.id}/rotate-secret`],
    ] as const) {
      const got = await api<ApiErrorBody>(
        method,
        path,
        method === 'PATCH' ? { description: 'x' } : undefined,
        OTHER_API_KEY,
      );
      expect([method, path, got.status]).toEqual([method, path, 404]);
    }
    for (let i = 1; i < 10; i++) {
      const created = await api<WebhookEndpointCreated>('POST', '/v1/webhooks', {
        url: receiver.url(`/n${i}`),
        events: ['notification.acked'],
      });
      expect(created.status).toBe(201);
      endpoints.push(created.body.id);
    }
    const eleventh = await api<ApiErrorBody>('POST', '/v1/webhooks', {
      url: receiver.url('/n11'),
      events: ['notification.acked'],
    });
    expect(eleventh.status).toBe(400);
    expect(eleventh.body.error.message).toMatch(/10 webhook endpoints/);
    const list = await api<{ items: WebhookEndpoint[] }>('GET', '/v1/webhooks');
    expect(list.body.items).toHaveLength(10);
    expect(list.body.items.every((e) => !('secret' in e))).toBe(true);
  });
});

/** The default, with no range allowed: even the local receiver is refused, by address and by name. */
describe('Delivery webhooks with the default address guard', () => {
  let db: TestDatabase;
  let replica: Replica;
  let dns: DnsServer;
  const prefix = testRedisPrefix('webhooks-default');

  beforeAll(async () => {
    dns = await startDnsServer({ 'local.test': '127.0.0.1' });
    db = await createTestDatabase('webhooks_default');
    replica = await Replica.create('webhooks-default', {
      databaseUrl: db.url,
      redisPrefix: prefix,
      HERALD_WEBHOOK_DNS_SERVER: `127.0.0.1:${dns.port}`,
    });
    await replica.start();
  });

  afterAll(async () => {
    await replica?.stop();
    await db?.drop();
    await deleteRedisPrefix(prefix);
    await dns?.close();
  });

  it('refuses 127.0.0.1, 10.0.0.1, 169.254.169.254 and a name resolving to 127.0.0.1, naming why', async () => {
    const cases: [string, RegExp][] = [
      ['http://127.0.0.1:9/hook', /loopback/],
      ['http://10.0.0.1/hook', /private/],
      ['http://169.254.169.254/latest/meta-data', /metadata/],
      ['http://local.test:9/hook', /local\.test resolves to 127\.0\.0\.1/],
    ];
    for (const [url, reason] of cases) {
      const got = await request<ApiErrorBody>(replica.http, 'POST', '/v1/webhooks', {
        body: { url, events: ['notification.acked'] },
      });
      expect([url, got.status]).toEqual([url, 400]);
      expect(got.body.error.message).toMatch(reason);
    }
    const callback = await request<ApiErrorBody>(replica.http, 'POST', '/v1/notifications', {
      body: { to: { users: ['ann'] }, event: 'x', callbackUrl: 'http://127.0.0.1:9/cb' },
    });
    expect(callback.status).toBe(400);
    expect(callback.body.error.details?.[0]?.field).toBe('callbackUrl');
  });
});
