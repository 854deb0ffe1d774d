import { randomUUID } from 'node:crypto';
import type { PublishResponse } from '@herald/protocol';
import { request, userToken } from '../helpers/api';
import { TestCluster } from '../helpers/cluster';
import { PrivateRedis } from '../helpers/private-redis';
import { waitFor } from '../helpers/wait';
import { TestClient } from '../helpers/ws-client';

/** Redis is only the fast path: losing it, data and all, loses no notification. */
describe('Delivery when Redis dies and comes back empty', () => {
  let redis: PrivateRedis;
  let cluster: TestCluster;

  beforeAll(async () => {
    redis = await PrivateRedis.create();
    cluster = await TestCluster.start('redisfault', 2, { REDIS_URL: redis.url });
  });

  afterAll(async () => {
    await cluster?.stop();
    await redis?.kill();
  });

  it('accepts publishes durably while Redis is down and delivers them once it is back', async () => {
    const [r1, r2] = cluster.replicas as [
      NonNullable<(typeof cluster.replicas)[0]>,
      NonNullable<(typeof cluster.replicas)[1]>,
    ];
    const alice = `alice-${randomUUID().slice(0, 8)}`;
    const client = await TestClient.connect(r1.ws, userToken(alice));
    try {
      await redis.kill();
      await waitFor('replica 2 to notice', async () => (await fetch(`${r2.http}/health/ready`)).status === 503);

      const published = await request<PublishResponse>(r2.http, 'POST', '/v1/notifications', {
        body: { to: { users: [alice] }, event: 'during.outage', payload: { n: 1 } },
      });
      expect(published.status).toBe(202);
      expect(await cluster.deliveryOf(published.body.id, alice)).toEqual({ status: 'pending', attempts: 0 });

      // Back, but empty: no queues, no schedules, no presence, no subscriptions.
      await redis.start();
      const [frame] = await client.notification(published.body.id, 1, 20_000);
      expect(frame).toMatchObject({ event: 'during.outage', payload: { n: 1 } });
      expect(await client.ack(published.body.id)).toMatchObject({ status: 'ok' });
      expect((await cluster.deliveryOf(published.body.id, alice))?.status).toBe('acked');
      // The bus catch-up may deliver before the next presence beat has written presence back.
      await waitFor('presence re-registered', () => r1.log().includes('presence was lost in Redis; re-registered'));
    } finally {
      await client.close();
    }
  });
});
