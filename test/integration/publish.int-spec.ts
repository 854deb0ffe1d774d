import { randomUUID } from 'node:crypto';
import type { ValidPublishRequest } from '@herald/protocol';
import { BadRequestError, IdempotencyConflictError, NotFoundError } from '../../apps/herald/src/common/errors';
import { PublishModule } from '../../apps/herald/src/publish/publish.module';
import { PublishService } from '../../apps/herald/src/publish/publish.service';
import { HeraldTestingModule } from '../helpers/testing-module';

/**
 * Publishing (PublishModule: the service, the publisher limiter, the record) in a Nest testing module, on
 * real PostgreSQL and Redis: what is stored, idempotency, a body the store refuses, and the publisher's
 * view. Over HTTP (validation, auth, sizes): test/integration/publish-api.int-spec.ts.
 */
describe('PublishModule', () => {
  let herald: HeraldTestingModule;
  let publisher: PublishService;
  const user = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
  const publish = (body: unknown, key?: string, publisherId = 'publisher-a') =>
    publisher.publish(publisherId, publisher.parseRequest(body), key);
  const count = async (sql: string, params: unknown[]) =>
    (await herald.dataSource.query<{ n: number }[]>(sql, params))[0]!.n;

  beforeAll(async () => {
    herald = await HeraldTestingModule.create('publish', [PublishModule]);
    publisher = herald.get(PublishService);
  });

  afterAll(async () => {
    await herald?.close();
  });

  it('stores concurrent publishes together, each with its own seq and one pending delivery per recipient', async () => {
    const users = Array.from({ length: 20 }, (_, i) => [user(`u${i}`), user(`v${i}`)]);
    const outcomes = await Promise.all(users.map((to) => publish({ to: { users: to }, event: 'batched' })));
    const seqs = outcomes.map((o) => o.response.seq);
    expect(new Set(seqs).size).toBe(20);
    for (const [i, { response, replayed }] of outcomes.entries()) {
      expect(replayed).toBe(false);
      expect(response.recipients).toBe(2);
      const rows = await herald.dataSource.query<{ user_id: string; status: string }[]>(
        'SELECT user_id, status FROM deliveries WHERE notification_id = $1 ORDER BY user_id',
        [response.id],
      );
      expect(rows).toEqual([...users[i]!].sort().map((u) => ({ user_id: u, status: 'pending' })));
    }
  });

  it('answers a repeated Idempotency-Key with the first notification, per publisher, and 422 for another body', async () => {
    const ann = user('ann');
    const key = `key-${randomUUID()}`;
    const first = await publish({ to: { users: [ann] }, event: 'once', payload: { a: 1 } }, key);
    // The same request, its keys in another order: the same body.
    const again = await publish({ payload: { a: 1 }, event: 'once', to: { users: [ann] } }, key);
    expect(again).toEqual({ response: first.response, replayed: true });
    expect(await count('SELECT count(*)::int AS n FROM deliveries WHERE user_id = $1', [ann])).toBe(1);
    await expect(publish({ to: { users: [ann] }, event: 'once', payload: { a: 2 } }, key)).rejects.toThrow(
      IdempotencyConflictError,
    );
    // Another publisher's key of the same name is its own.
    const other = await publish({ to: { users: [ann] }, event: 'once', payload: { a: 1 } }, key, 'publisher-b');
    expect(other.replayed).toBe(false);
    expect(other.response.id).not.toBe(first.response.id);
  });

  it('answers 400 on the payload for content PostgreSQL refuses, and stores nothing of it', async () => {
    const bob = user('bob');
    const nul = { to: { users: [bob] }, event: 'nul', payload: { text: 'a\u0000b' }, ttlSeconds: 60 };
    // The schema refuses it first; past the schema, the store's own refusal is a 400 too, not a 503.
    expect(() => publisher.parseRequest(nul)).toThrow(/payload contains a NUL character/);
    const refused = await publisher
      .publish('publisher-a', nul as ValidPublishRequest, undefined)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BadRequestError);
    expect((refused as BadRequestError).details?.[0]?.field).toBe('payload');
    expect(await count('SELECT count(*)::int AS n FROM deliveries WHERE user_id = $1', [bob])).toBe(0);
    // The next publish is stored as usual: the refusal left no batch behind.
    await expect(publish({ to: { users: [bob] }, event: 'fine' })).resolves.toMatchObject({ replayed: false });
  });

  it('stores a topic with nobody subscribed as zero recipients, and everyone as every known user', async () => {
    const topic = await publish({ to: { topic: `empty-${randomUUID().slice(0, 8)}` }, event: 't' });
    expect(topic.response.recipients).toBe(0);
    const known = await count('SELECT count(*)::int AS n FROM users', []);
    const all = await publish({ to: { all: true }, event: 'all' });
    expect(all.response.recipients).toBe(known);
  });

  it('shows a publisher its own notification with its deliveries paged, and nobody else’s', async () => {
    const to = [user('c'), user('d'), user('e')];
    const { response } = await publish({ to: { users: to }, event: 'paged', ttlSeconds: 60 });
    const first = await publisher.get('publisher-a', response.id, { limit: 2 });
    expect(first).toMatchObject({ id: response.id, recipients: 3, audience: { users: to }, counts: { pending: 3 } });
    expect(Date.parse(first.expiresAt) - Date.parse(first.createdAt)).toBe(60_000);
    expect(first.deliveries.items.map((d) => d.userId)).toEqual([...to].sort().slice(0, 2));
    const second = await publisher.get('publisher-a', response.id.toUpperCase(), {
      limit: 2,
      after: first.deliveries.nextCursor!,
    });
    expect(second.deliveries).toEqual({
      items: [expect.objectContaining({ userId: [...to].sort()[2], status: 'pending', attempts: 0 })],
      nextCursor: null,
    });
    await expect(publisher.get('publisher-b', response.id, { limit: 2 })).rejects.toThrow(NotFoundError);
    await expect(publisher.get('publisher-a', 'nope', { limit: 2 })).rejects.toThrow(NotFoundError);
  });
});
