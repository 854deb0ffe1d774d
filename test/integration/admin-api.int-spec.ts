import type { AdminSession, ApiErrorBody } from '@herald/protocol';
import { request, userToken } from '../helpers/api';
import { InProcessHerald } from '../helpers/in-process';
import { TEST_ADMIN_PASSWORD, TEST_API_KEY } from '../helpers/replica';

/**
 * The admin API's HTTP surface, the app in-process: which credentials its routes take, and the answers to
 * a bad query. What the routes do is test/integration/admin.int-spec.ts; across replicas (the login limit,
 * live connections, the event stream) test/e2e/admin-api.e2e-spec.ts.
 */
describe('Admin API over HTTP', () => {
  let herald: InProcessHerald;
  let session: string;

  beforeAll(async () => {
    herald = await InProcessHerald.start('adminhttp', { HERALD_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD });
    const login = await request<AdminSession>(herald.http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: TEST_ADMIN_PASSWORD },
    });
    expect(login.status).toBe(201);
    expect(login.headers.get('cache-control')).toBe('no-store');
    session = login.body.token;
  });

  afterAll(async () => {
    await herald?.stop();
  });

  it('answers a wrong password 401 with the login realm, and a login without a body 400', async () => {
    const wrong = await request<ApiErrorBody>(herald.http, 'POST', '/admin/api/login', {
      apiKey: null,
      body: { password: 'guess' },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toMatchObject({ code: 'UNAUTHORIZED', message: 'wrong password' });
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="herald-admin"');
    const empty = await request<ApiErrorBody>(herald.http, 'POST', '/admin/api/login', { apiKey: null, body: {} });
    expect(empty.status).toBe(400);
    expect(empty.body.error.details?.[0]?.field).toBe('password');
  });

  it('refuses API keys, user tokens, forged and missing sessions on every admin endpoint', async () => {
    for (const credential of [null, TEST_API_KEY, userToken('admin'), `${session}x`]) {
      for (const [method, path] of [
        ['GET', '/admin/api/connections'],
        ['GET', '/admin/api/stats'],
        ['GET', '/admin/api/notifications'],
        ['POST', '/admin/api/broadcasts'],
        ['GET', '/admin/api/events'],
      ] as const) {
        const answer = await request<ApiErrorBody>(herald.http, method, path, {
          apiKey: credential,
          ...(method === 'POST' ? { body: {} } : {}),
        });
        expect({ credential: credential?.slice(0, 8), method, path, status: answer.status }).toEqual({
          credential: credential?.slice(0, 8),
          method,
          path,
          status: 401,
        });
      }
    }
    // And an admin session is not a user token: it opens no stream and mints no ticket.
    const stream = await fetch(`${herald.http}/v1/stream`, { headers: { authorization: `Bearer ${session}` } });
    expect(stream.status).toBe(401);
    expect((await request(herald.http, 'POST', '/v1/tickets', { apiKey: session })).status).toBe(401);
  });

  it('answers a bad history filter with 400 naming the field', async () => {
    for (const [query, field] of [
      ['status=lost', 'status'],
      ['limit=0', 'limit'],
      ['from=yesterday', 'from'],
      ['before=abc', 'before'],
      ['userId=bad%20user', 'userId'],
    ]) {
      const answer = await request<ApiErrorBody>(herald.http, 'GET', `/admin/api/notifications?${query}`, {
        apiKey: session,
      });
      expect({ query, status: answer.status, field: answer.body.error.details?.[0]?.field }).toEqual({
        query,
        status: 400,
        field,
      });
    }
  });
});
