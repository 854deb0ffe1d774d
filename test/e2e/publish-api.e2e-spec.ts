import { spawnSync } from 'node:child_process';
import type { ApiErrorBody, PublishResponse } from '@herald/protocol';
import { request } from '../helpers/api';
import { HERALD_MAIN } from '../helpers/paths';
import { PrivatePostgres } from '../helpers/private-postgres';
import { deleteRedisPrefix, testRedisPrefix } from '../helpers/redis';
import { Replica } from '../helpers/replica';

/**
 * The REST surface where a process is the point: a PostgreSQL server that stops under a replica, and a bad
 * config's exit code. Validation, auth, limits, paging, tokens and health are
 * test/integration/publish-api.int-spec.ts (in-process).
 */
describe('Publish API', () => {
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
