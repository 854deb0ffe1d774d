import { publisherKeyId } from '../../apps/herald/src/auth/publisher-key-id';
import { request, HttpResult } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { Edge } from '../helpers/edge';
import { moved, scrape } from '../helpers/metrics';
import { LIFTED_PUBLISHER_LIMITS, TEST_API_KEY } from '../helpers/replica';
import { holdFor } from '../helpers/wait';

/** A key held to 1 notification per second with a burst of 4, and 1 000 recipients per minute. */
const SLOW_KEY = 'slow-publisher-key-0123456789';
const SLOW_PER_SECOND = 1;
/** One of its tokens back, with room for the two clocks (ours, Redis's). */
const SLOW_TOKEN_REFILL_MS = 1000 / SLOW_PER_SECOND + 100;
/** A key with room for notifications but only 5 recipients per minute. */
const NARROW_KEY = 'narrow-publisher-key-0123456789';

interface ErrorBody {
  error: { code: string; message: string };
}

/** Per-publisher limits (issue 22 item 5): shared by the replicas in Redis, answered 429 through Nginx. */
describe('Per-publisher rate limits', () => {
  let cluster: TestCluster;
  let edge: Edge;

  beforeAll(async () => {
    cluster = await TestCluster.start('publimits', 2, {
      HERALD_API_KEYS: [TEST_API_KEY, SLOW_KEY, NARROW_KEY].join(','),
      HERALD_PUBLISHER_LIMITS: [
        LIFTED_PUBLISHER_LIMITS,
        `${publisherKeyId(SLOW_KEY)}=${SLOW_PER_SECOND}/4/1000`,
        `${publisherKeyId(NARROW_KEY)}=1000/1000/5`,
      ].join(','),
    });
    edge = await Edge.start(cluster.replicas.map((r) => r.port));
  });

  afterAll(async () => {
    await edge?.stop();
    await cluster?.stop();
  });

  const stored = async (apiKey: string): Promise<number> =>
    Number(
      (
        await cluster.db.query<{ n: string }>('SELECT count(*) AS n FROM notifications WHERE publisher_id = $1', [
          publisherKeyId(apiKey),
        ])
      )[0]!.n,
    );

  it('shares one burst across both replicas and answers the rest 429 with RateLimit fields, storing nothing', async () => {
    const before = await scrape(cluster.replicas.map((r) => r.http));
    // Ten at once, half at each replica directly and half through Nginx: four pass, wherever they land.
    const bases = [cluster.replicas[0]!.http, cluster.replicas[1]!.http, edge.http];
    const answers: HttpResult<ErrorBody>[] = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request<ErrorBody>(bases[i % 3]!, 'POST', '/v1/notifications', {
          apiKey: SLOW_KEY,
          body: { to: { users: [`u${i}`] }, event: 'limited', payload: { i } },
        }),
      ),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 202)).toHaveLength(4);
    expect(statuses.filter((s) => s === 429)).toHaveLength(6);
    const refused = answers.find((a, i) => a.status === 429 && i % 3 === 2) ?? answers.find((a) => a.status === 429)!;
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(refused.body.error.message).toContain('over its rate of 1 notifications per second (burst 4)');
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('ratelimit-policy')).toBe('"notifications";q=4;w=4, "recipients";q=1000;w=60');
    expect(refused.headers.get('ratelimit')).toBe('"notifications";r=0;t=1');
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await stored(SLOW_KEY)).toBe(4);
    // The key without an entry is the lifted test key: it is not held back by the slow one.
    expect(
      (await request(edge.http, 'POST', '/v1/notifications', { body: { to: { users: ['x'] }, event: 'e' } })).status,
    ).toBe(202);
    const after = await scrape(cluster.replicas.map((r) => r.http));
    expect(
      moved(before, after, ['herald_publisher_rate_limited_total{reason="notifications"}'])[
        'herald_publisher_rate_limited_total{reason="notifications"}'
      ],
    ).toBe(6);

    // A second later one token is back.
    await holdFor("one of the slow key's tokens to refill", SLOW_TOKEN_REFILL_MS);
    const later = await request(edge.http, 'POST', '/v1/notifications', {
      apiKey: SLOW_KEY,
      body: { to: { users: ['u'] }, event: 'limited' },
    });
    expect(later.status).toBe(202);
  });

  it('charges the resolved audience of a topic inside its transaction and rolls an over-budget one back', async () => {
    const subscribe = (topic: string, users: string[]) =>
      cluster.db.query(`SELECT herald_subscribe(u, $2, 100) FROM unnest($1::text[]) AS u`, [users, topic]);
    await subscribe('six', ['a', 'b', 'c', 'd', 'e', 'f']);
    await subscribe('three', ['a', 'b', 'c']);
    const publishTo = (to: unknown) =>
      request<ErrorBody & { recipients: number }>(edge.http, 'POST', '/v1/notifications', {
        apiKey: NARROW_KEY,
        body: { to, event: 'narrow' },
      });

    // Six subscribers against a budget of five: refused, and the statement that stored it rolled back.
    const six = await publishTo({ topic: 'six' });
    expect(six.status).toBe(429);
    expect(six.body.error.message).toContain('more than publisher');
    expect(six.headers.get('ratelimit')).toMatch(/^"recipients";r=5;t=\d+$/);
    expect(await stored(NARROW_KEY)).toBe(0);
    expect(
      Number(
        (
          await cluster.db.query<{ n: string }>(
            `SELECT count(*) AS n FROM deliveries d JOIN notifications n ON n.id = d.notification_id
              WHERE n.publisher_id = $1`,
            [publisherKeyId(NARROW_KEY)],
          )
        )[0]!.n,
      ),
    ).toBe(0);

    const three = await publishTo({ topic: 'three' });
    expect(three.status).toBe(202);
    expect(three.body.recipients).toBe(3);
    // Two left: a user list of three is refused before it is stored, one of two passes.
    const list = await publishTo({ users: ['a', 'b', 'c'] });
    expect(list.status).toBe(429);
    expect(list.headers.get('ratelimit')).toMatch(/^"recipients";r=2;t=\d+$/);
    expect(list.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await publishTo({ users: ['a', 'b'] })).status).toBe(202);
    expect(await stored(NARROW_KEY)).toBe(2);
  });
});
