import { DrainState } from '../../apps/herald/src/common/lifecycle.module';
import { HealthModule } from '../../apps/herald/src/health/health.module';
import { HealthService } from '../../apps/herald/src/health/health.service';
import { REDIS, type RedisClient } from '../../apps/herald/src/redis/redis-client';
import { HeraldTestingModule } from '../helpers/testing-module';
import { waitFor } from '../helpers/wait';

/**
 * Readiness (HealthModule) in a Nest testing module: what `/health/ready` reports, from real PostgreSQL and
 * Redis. A PostgreSQL server that stops under a replica: test/e2e/publish-api.e2e-spec.ts; Redis that
 * stops: test/e2e/infra-faults.e2e-spec.ts.
 */
describe('HealthModule', () => {
  let herald: HeraldTestingModule;
  let health: HealthService;

  beforeAll(async () => {
    herald = await HeraldTestingModule.create('health', [HealthModule]);
    health = herald.get(HealthService);
  });

  afterAll(async () => {
    await herald?.close();
  });

  it('is ready when PostgreSQL and Redis answer, naming the replica', async () => {
    await expect(health.ready()).resolves.toEqual({
      status: 'ok',
      replicaId: herald.id,
      checks: { postgres: 'up', redis: 'up' },
    });
  });

  it('names Redis down while its client has no connection, and is ready again once it has', async () => {
    const redis = herald.get<RedisClient>(REDIS);
    redis.disconnect();
    await waitFor('the Redis client to close', () => redis.status === 'end');
    await expect(health.ready()).resolves.toMatchObject({
      status: 'unavailable',
      checks: { postgres: 'up', redis: 'down' },
    });
    await redis.connect();
    await expect(health.ready()).resolves.toMatchObject({ status: 'ok', checks: { redis: 'up' } });
  });

  it('reports draining once the replica is told to stop, whatever the stores say', async () => {
    herald.get(DrainState).begin();
    await expect(health.ready()).resolves.toMatchObject({
      status: 'draining',
      checks: { postgres: 'up', redis: 'up' },
    });
  });

  // Last: the pool is gone for good.
  it('names PostgreSQL down when its pool cannot query', async () => {
    await herald.dataSource.destroy();
    await expect(health.ready()).resolves.toMatchObject({ checks: { postgres: 'down', redis: 'up' } });
  });
});
