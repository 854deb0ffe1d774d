import { Redis } from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { publisherKeyId } from '../../apps/herald/src/auth/publisher-key-id';
import { RateLimitedError } from '../../apps/herald/src/common/errors';
import { HeraldConfig, parseConfig } from '../../apps/herald/src/config/config.schema';
import { PublisherLimiter } from '../../apps/herald/src/publish/publisher-limiter';
import { RedisKeys } from '../../apps/herald/src/redis/redis-keys';
import { TEST_REDIS_URL } from '../helpers/env';
import { PrivateRedis } from '../helpers/private-redis';
import { deleteRedisPrefix, testRedisPrefix } from '../helpers/redis';
import { holdFor, waitFor } from '../helpers/wait';

const KEY = 'limiter-test-key-0123456789';
const KEY_ID = publisherKeyId(KEY);
/** The fail-open test's rate (burst 1): one token back this long after it was taken, with room for the clocks. */
const FAIL_OPEN_PER_SECOND = 1;
const ONE_TOKEN_REFILL_MS = 1000 / FAIL_OPEN_PER_SECOND + 100;

function config(redisUrl: string, prefix: string, limits: string): HeraldConfig {
  return parseConfig({
    REDIS_URL: redisUrl,
    HERALD_REDIS_PREFIX: prefix,
    HERALD_API_KEYS: KEY,
    HERALD_JWT_SECRET: 'limiter-test-secret-0123456789abcdef0123',
    HERALD_PUBLISHER_LIMITS: `${KEY_ID}=${limits}`,
    LOG_LEVEL: 'fatal',
  });
}

/** What a key's bucket holds in Redis now (as the script last wrote it). */
async function bucketLevel(prefix: string, bucket: 'notifications' | 'recipients'): Promise<number> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    return Number(await redis.hget(`${prefix}:{pub:${KEY_ID}}:${bucket}`, 'level'));
  } finally {
    redis.disconnect();
  }
}

/** One replica's limiter, on a Redis connection with a replica's options (redis.module.ts). */
class Replica {
  readonly registry = new Registry();
  readonly limiter: PublisherLimiter;
  private readonly redis: Redis;

  constructor(redisUrl: string, prefix: string, limits: string) {
    this.redis = new Redis(redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
      enableAutoPipelining: true,
      retryStrategy: () => 100,
    });
    this.redis.on('error', () => undefined);
    const counter = (name: string) =>
      new Counter({ name, help: name, labelNames: ['reason'], registers: [this.registry] });
    this.limiter = new PublisherLimiter(this.redis, new RedisKeys(prefix), config(redisUrl, prefix, limits), {
      rateLimited: counter('herald_publisher_rate_limited_total'),
      failOpen: counter('herald_publisher_limiter_fail_open_total'),
      logger: { warn: () => undefined, log: () => undefined },
    });
  }

  async ready(): Promise<this> {
    if (this.redis.status !== 'ready') await new Promise((resolve) => this.redis.once('ready', resolve));
    return this;
  }

  /** Publishes of `recipients` each, all at once: which were admitted, which refused. */
  async burst(count: number, recipients = 1): Promise<{ admitted: number; refusals: RateLimitedError[] }> {
    const outcomes = await Promise.allSettled(
      Array.from({ length: count }, () => Promise.resolve(this.limiter.admit(KEY_ID, recipients))),
    );
    const refusals = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as RateLimitedError] : []));
    return { admitted: count - refusals.length, refusals };
  }

  async counter(name: string, labels: Record<string, string>): Promise<number> {
    const metric = (await this.registry.getSingleMetric(name)!.get()).values;
    return metric.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
  }

  get connected(): boolean {
    return this.redis.status === 'ready';
  }

  close(): void {
    this.redis.disconnect();
  }
}

/** The per-publisher limits against real Redis: two limiters stand for two replicas. */
describe('Publisher limiter', () => {
  const prefixes: string[] = [];
  const replicas: Replica[] = [];
  const start = async (limits: string, redisUrl = TEST_REDIS_URL, prefix?: string) => {
    const p = prefix ?? testRedisPrefix('limiter');
    if (!prefix) prefixes.push(p);
    const replica = await new Replica(redisUrl, p, limits).ready();
    replicas.push(replica);
    return { replica, prefix: p };
  };

  afterAll(async () => {
    for (const r of replicas) r.close();
    for (const p of prefixes) await deleteRedisPrefix(p);
  });

  it('admits a burst exactly, in one script, and refuses the rest with the RateLimit fields', async () => {
    // 1 per second, burst 5: eight publishes in one turn are decided together by Redis.
    const { replica } = await start('1/5/1000');
    const { admitted, refusals } = await replica.burst(8);
    expect(admitted).toBe(5);
    expect(refusals).toHaveLength(3);
    const refusal = refusals[0]!;
    expect(refusal).toBeInstanceOf(RateLimitedError);
    expect(refusal.code).toBe('RATE_LIMITED');
    expect(refusal.retryAfterSeconds).toBe(1);
    expect(refusal.message).toContain('over its rate of 1 notifications per second (burst 5)');
    expect(refusal.fields).toEqual({
      policy: '"notifications";q=5;w=5, "recipients";q=1000;w=60',
      current: '"notifications";r=0;t=1',
    });
    expect(await replica.counter('herald_publisher_rate_limited_total', { reason: 'notifications' })).toBe(3);
  });

  it('shares one budget across replicas, allowances included, and never admits more than it holds', async () => {
    // Burst 100 at 1 per second. The first publish takes 1 token and, the bucket being over half full, an
    // allowance of 10 more for the first replica, which it spends without asking Redis.
    const { replica: first, prefix } = await start('1/100/1000000');
    const { replica: second } = await start('1/100/1000000', TEST_REDIS_URL, prefix);
    const started = Date.now();
    await first.limiter.admit(KEY_ID, 1);
    const level = await bucketLevel(prefix, 'notifications');
    expect(level).toBeGreaterThan(88);
    expect(level).toBeLessThanOrEqual(89.1);
    for (let i = 1; i < 40; i++) await first.limiter.admit(KEY_ID, 1);
    const { admitted } = await second.burst(100);
    // 60 left, less what the first replica still holds (at most 10), plus what refilled meanwhile (1 a
    // second: a token or two on a quiet machine, more on a loaded one).
    const refilled = () => 2 + Math.ceil((Date.now() - started) / 1000);
    expect(admitted).toBeGreaterThanOrEqual(50);
    expect(40 + admitted).toBeLessThanOrEqual(100 + refilled());
    // Below half, each publish is Redis's decision: the first replica gets nothing more than the rest.
    const { admitted: more } = await first.burst(20);
    expect(40 + admitted + more).toBeLessThanOrEqual(100 + refilled());
  });

  it('hands out an allowance of both kinds or none, and limits API keys only', async () => {
    // Burst 5: half of it leaves no whole notification to hand out, so no recipients are taken either.
    const { replica, prefix } = await start('1/5/600000');
    await replica.limiter.admit(KEY_ID, 1);
    const level = await bucketLevel(prefix, 'recipients');
    expect(level).toBeGreaterThan(599_998);
    expect(level).toBeLessThanOrEqual(599_999.1);
    // The admin console publishes under an id that is no API key's: it is not limited.
    expect(replica.limiter.limits('admin-console')).toBeNull();
    expect(replica.limiter.limits(KEY_ID)).toEqual({ perSecond: 1, burst: 5, recipientsPerMinute: 600000 });
  });

  it('charges recipients, and names an audience that can never fit', async () => {
    const { replica } = await start('1000/1000/100');
    await replica.limiter.admit(KEY_ID, 60);
    const over = await Promise.resolve(replica.limiter.admit(KEY_ID, 50)).catch((e: unknown) => e as RateLimitedError);
    expect(over).toBeInstanceOf(RateLimitedError);
    expect(over!.message).toContain('has 40 of its 100 recipients per minute left, and this publish reaches 50');
    expect(over!.fields?.current).toMatch(/^"recipients";r=40;t=[67]$/);
    expect(over!.retryAfterSeconds).toBeGreaterThanOrEqual(6);
    const never = await replica.limiter.charge([{ keyId: KEY_ID, recipients: 101 }]);
    expect(never[0]?.message).toContain('more than publisher');
    expect(never[0]?.message).toContain('whole budget of 100 per minute');
    // The refused ones took nothing: 40 are still there.
    expect(await replica.limiter.charge([{ keyId: KEY_ID, recipients: 40 }])).toEqual([null]);
    expect(await replica.counter('herald_publisher_rate_limited_total', { reason: 'recipients' })).toBe(2);
  });

  it('lets publishing go on when Redis is slow or down, and counts it', async () => {
    const redis = await PrivateRedis.create();
    try {
      // A minute's recipients are not the point here: a charge that timed out may still reach Redis later
      // and spend its recipient, which would refuse everything for a minute.
      const { replica, prefix } = await start(`${FAIL_OPEN_PER_SECOND}/1/600000`, redis.url);
      // Every client paused for 300 ms, from the moment CLIENT PAUSE answers: the charge times out at 50 ms
      // and the batch is let through.
      await redis.call('CLIENT', 'PAUSE', 300, 'ALL');
      const slow = await replica.burst(3);
      // The late charge runs once the pause ends: its bucket is written before Redis is killed under it.
      await waitFor(
        'the paused charge to run after CLIENT PAUSE',
        async () => (await redis.call('EXISTS', `${prefix}:{pub:${KEY_ID}}:notifications`)) === 1,
      );
      expect(slow.admitted).toBe(3);
      expect(await replica.counter('herald_publisher_limiter_fail_open_total', { reason: 'timeout' })).toBe(1);

      await redis.kill();
      await waitFor('the limiter to see Redis gone', async () => !replica.connected);
      const down = await replica.burst(3);
      expect(down.admitted).toBe(3);
      // Refused at once (error), or, while the client is still connecting, unanswered for 50 ms (timeout).
      const failOpen = async (reason: string) =>
        replica.counter('herald_publisher_limiter_fail_open_total', { reason });
      expect((await failOpen('error')) + (await failOpen('timeout'))).toBe(2);

      // Back: the limits hold again (burst 1: one of three).
      await redis.start();
      await waitFor('the limiter to reconnect', async () => replica.connected);
      // A charge of the outage sent while the client was connecting runs once Redis answers, and takes the
      // one token (admitted by then, failing open); the bucket holds one again a token's refill later.
      await holdFor('the one-token bucket to refill', ONE_TOKEN_REFILL_MS);
      const back = await replica.burst(3);
      expect(back.admitted).toBe(1);
    } finally {
      replicas.pop()?.close();
      await redis.destroy();
    }
  });
});
