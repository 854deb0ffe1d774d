import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { keySlot } from '../../scripts/lib/redis-cluster';
import { LoginAttemptsRepository } from '../../apps/herald/src/admin/login-attempts.repository';
import { publisherKeyId } from '../../apps/herald/src/auth/publisher-key-id';
import { TicketService } from '../../apps/herald/src/auth/ticket.service';
import { RateLimitedError } from '../../apps/herald/src/common/errors';
import { HeraldConfig, parseConfig } from '../../apps/herald/src/config/config.schema';
import { retirePreviousQueues } from '../../apps/herald/src/database/schema-upgrade';
import { MetricsService } from '../../apps/herald/src/metrics/metrics.service';
import { PublisherLimiter } from '../../apps/herald/src/publish/publisher-limiter';
import { createRedis, publishOn, RedisClient, whenReady } from '../../apps/herald/src/redis/redis-client';
import { RedisKeys } from '../../apps/herald/src/redis/redis-keys';
import { Subscriber } from '../../apps/herald/src/redis/subscriber';
import { PresenceEntry, PresenceRepository } from '../../apps/herald/src/routing/presence.repository';
import { PrivateRedisCluster } from '../helpers/private-redis-cluster';
import { waitFor } from '../helpers/wait';

const KEY = 'cluster-test-key-0123456789';
const KEY_ID = publisherKeyId(KEY);

/**
 * Every Redis user of a replica, in process, on a real Redis Cluster (3 masters, 3 replicas): each command
 * and script keeps its keys in one slot, whatever slots the users, replicas and keys fall in. What crosses
 * replicas (the bus, failover, reshard) is test/e2e/redis-cluster.e2e-spec.ts.
 */
describe('Redis users on a Redis Cluster (in-process)', () => {
  let cluster: PrivateRedisCluster;
  let config: HeraldConfig;
  let redis: RedisClient;
  let keys: RedisKeys;
  let metrics: MetricsService;
  const prefix = `c${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    cluster = await PrivateRedisCluster.create();
    config = parseConfig({
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: cluster.nodes,
      HERALD_REDIS_PREFIX: prefix,
      HERALD_API_KEYS: KEY,
      HERALD_JWT_SECRET: 'cluster-test-secret-0123456789abcdef0123',
      HERALD_PUBLISHER_LIMITS: `${KEY_ID}=5/5/1000`,
      REPLICA_ID: 'cluster-int',
      LOG_LEVEL: 'fatal',
    });
    redis = await whenReady(createRedis(config, 'commands'), config.redis);
    keys = new RedisKeys(prefix, true);
    metrics = new MetricsService(config);
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await cluster?.destroy();
  });

  it('is a Cluster client, with BullMQ keys under one hash tag', () => {
    expect(redis).toBeInstanceOf(Cluster);
    expect(keys.bullPrefix()).toBe(`{${prefix}:bull}`);
    expect(new RedisKeys(prefix).bullPrefix()).toBe(`${prefix}:bull`);
  });

  it('keeps presence of users on every shard: the per-user cap, holders, who is online, the list, beats, removals', async () => {
    const presence = new PresenceRepository(redis, keys);
    const masters = await cluster.masters();
    const shardOf = (userId: string) => {
      const slot = keySlot(keys.userConnections(userId));
      return masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))!.port;
    };
    const users = Array.from({ length: 30 }, (_, i) => `u${i}-${randomUUID().slice(0, 6)}`);
    expect(new Set(users.map(shardOf)).size).toBe(3);
    const entry = (userId: string, replicaId = 'r1'): PresenceEntry => ({
      connectionId: randomUUID(),
      userId,
      replicaId,
      connectedAt: new Date().toISOString(),
      remoteAddress: '127.0.0.1',
      userAgent: 'test',
    });
    // Beats of replicas whose keys fall on every master: SCAN must visit each.
    const others = Array.from({ length: 9 }, (_, i) => `r${i + 2}`);
    for (const id of ['r1', ...others]) await presence.beat(id, [], 60_000);
    expect(new Set(others.map((id) => keySlot(keys.replica(id)))).size).toBeGreaterThan(1);
    expect((await presence.beats()).map((b) => b.replicaId).sort()).toEqual(['r1', ...others].sort());
    // The first user three times: the third is over the cap of 2, counted with those before it in the call.
    const entries = [...users.map((u) => entry(u)), entry(users[0]!), entry(users[0]!)];
    const added = await presence.addMany(entries, 60_000, 2);
    expect(added).toEqual([...users.map(() => true), true, false]);
    expect(await redis.hexists(keys.replicaConnections('r1'), entries.at(-1)!.connectionId)).toBe(0);

    const holders = await presence.holders(users);
    expect(holders.map((h) => Object.values(h))).toEqual(users.map((_, i) => (i === 0 ? ['r1', 'r1'] : ['r1'])));
    expect(await presence.onlineUsers([...users, 'nobody'])).toEqual(new Set(users));
    expect((await presence.list()).filter((e) => e.replicaId === 'r1')).toHaveLength(31);

    // A replica that stopped beating: its users' entries are ghosts, pruned by onlineUsers.
    const ghost = entry(`ghost-${randomUUID().slice(0, 6)}`, 'r-dead');
    await presence.addMany([ghost], 60_000, 2);
    expect(await presence.onlineUsers([ghost.userId])).toEqual(new Set());
    expect(await redis.exists(keys.userConnections(ghost.userId))).toBe(0);

    await presence.removeMany(
      'r1',
      entries.slice(0, 10).map((e) => ({ userId: e.userId, connectionId: e.connectionId })),
    );
    expect(await presence.onlineUsers(users.slice(1, 10))).toEqual(new Set());
    await presence.removeReplica(
      'r1',
      entries.slice(10).map((e) => ({ userId: e.userId, connectionId: e.connectionId })),
    );
    expect(await presence.onlineUsers(users)).toEqual(new Set());
    expect((await presence.beats()).map((b) => b.replicaId)).not.toContain('r1');
  });

  it('limits a publisher with one script on its two buckets (one hash tag)', async () => {
    const registry = new Registry();
    const limiter = new PublisherLimiter(redis, keys, config, {
      rateLimited: new Counter({ name: 'rl', help: 'rl', labelNames: ['reason'], registers: [registry] }),
      failOpen: new Counter({ name: 'fo', help: 'fo', labelNames: ['reason'], registers: [registry] }),
      logger: { warn: () => undefined, log: () => undefined },
    });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => Promise.resolve(limiter.admit(KEY_ID, 1))),
    );
    const refused = outcomes.filter((o) => o.status === 'rejected');
    expect(outcomes.length - refused.length).toBe(5);
    for (const r of refused) expect(r.reason).toBeInstanceOf(RateLimitedError);
    expect(await redis.exists(keys.publisherBucket(KEY_ID, 'notifications'))).toBe(1);
    expect(keySlot(keys.publisherBucket(KEY_ID, 'notifications'))).toBe(
      keySlot(keys.publisherBucket(KEY_ID, 'recipients')),
    );
  });

  it('mints and consumes tickets, and counts login attempts', async () => {
    const tickets = new TicketService(redis, keys, config, metrics);
    const minted = await tickets.mint('user', 'alice', Math.floor(Date.now() / 1000) + 600, undefined);
    expect(await tickets.consume(minted.ticket, 'user', undefined)).toMatchObject({ subject: 'alice' });
    await expect(tickets.consume(minted.ticket, 'user', undefined)).rejects.toThrow('invalid ticket');

    const attempts = new LoginAttemptsRepository(redis, keys);
    expect((await attempts.reserve('10.0.0.9')).count).toBe(1);
    expect((await attempts.reserve('10.0.0.9')).count).toBe(2);
    await attempts.release('10.0.0.9');
    expect((await attempts.reserve('10.0.0.9')).count).toBe(2);
  });

  it("removes the previous version's queue keys, one UNLINK each", async () => {
    const retired = Array.from({ length: 5 }, (_, i) => `${keys.bullPrefix()}:redelivery:${i}`);
    for (const key of retired) await redis.set(key, '1');
    expect(await retirePreviousQueues(redis, keys)).toBe(5);
    expect(await Promise.all(retired.map((k) => redis.exists(k)))).toEqual(retired.map(() => 0));
  });

  it('carries sharded pub/sub on channels of different shards, and counts its subscriptions', async () => {
    const heard: [string, string][] = [];
    const subscriber = new Subscriber(config, 'test-subscriber', metrics, {
      message: (channel, raw) => heard.push([channel, raw]),
    });
    try {
      const channels = [keys.replicaChannel('a'), keys.replicaChannel('b'), keys.broadcastChannel()];
      await subscriber.subscribe(channels);
      expect(metrics.redisSubscriptions.get('test-subscriber')?.()).toBe(3);
      await waitFor('every channel to carry a message', async () => {
        for (const channel of channels) await publishOn(redis, channel, `to ${channel}`);
        return channels.every((c) => heard.some(([channel]) => channel === c));
      });
    } finally {
      await subscriber.close();
    }
    expect(metrics.redisSubscriptions.has('test-subscriber')).toBe(false);
  });
});
