import { Logger } from '@nestjs/common';
import type { ConnectionOptions } from 'bullmq';
import { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { HeraldConfig, RedisTarget } from '../config/config.schema';

/** One Redis or a Redis Cluster: every Redis user in Herald takes either (ADR 0019). */
export type RedisClient = Redis | Cluster;

/** Nest token of the command connection (presence, publishing). Subscribers make their own. */
export const REDIS = Symbol('REDIS');

const logger = new Logger('Redis');

/** What a connection is for: commands fail fast; a subscriber queues its subscriptions until connected. */
export type RedisRole = 'commands' | 'subscriber';

/** The credentials and TLS of `target` as ioredis options (a user name or password in `REDIS_URL` wins). */
function credentialsOf(target: RedisTarget): { username?: string; password?: string; tls?: object } {
  return {
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
  };
}

/** The options every connection to one node takes, in either mode. */
function nodeOptions(config: HeraldConfig, name: string, role: RedisRole): RedisOptions {
  const subscriber = role === 'subscriber';
  return {
    ...credentialsOf(config.redis),
    connectionName: `herald:${config.replicaId}:${name}`,
    // Fail fast while Redis is down instead of queueing commands without bound:
    // PostgreSQL stays the record and the sweep catches up once Redis is back.
    enableOfflineQueue: subscriber,
    maxRetriesPerRequest: 1,
    // A stalled Redis must not stall a publish (it is already durable) or a connection setup.
    ...(subscriber ? {} : { commandTimeout: 2000 }),
    retryStrategy: (times) => Math.min(times * 200, 2000),
  };
}

/**
 * Options of a Cluster client. Slots are refreshed every second, so a replica notices a failover or a moved
 * slot within about that even when none of its own commands was redirected (a subscriber's channels are
 * subscribed again on their new node at each refresh that changed the map).
 */
export function clusterOptions(config: HeraldConfig, name: string, role: RedisRole): ClusterOptions {
  const subscriber = role === 'subscriber';
  return {
    redisOptions: nodeOptions(config, name, role),
    enableOfflineQueue: subscriber,
    enableAutoPipelining: !subscriber,
    shardedSubscribers: subscriber,
    slotsRefreshInterval: 1000,
    // A command on a failed master is tried again for about a second (the failover takes longer): then it
    // fails, as on one Redis that is down, and the sweep or the client's retry takes over.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    maxRedirections: 10,
    clusterRetryStrategy: (times) => Math.min(times * 200, 2000),
    // A TLS cluster answers CLUSTER SLOTS with the nodes' IP addresses: certificates name the seed hosts.
    ...(config.redis.tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
  };
}

/** A connection (or, on a cluster, a connection per node) named `herald:<replica>:<name>`. */
export function createRedis(config: HeraldConfig, name: string, role: RedisRole = 'commands'): RedisClient {
  const target = config.redis;
  const redis =
    target.mode === 'cluster'
      ? new Cluster(target.nodes, clusterOptions(config, name, role))
      : new Redis(target.url, {
          ...nodeOptions(config, name, role),
          // Commands issued in the same tick (publishes and acks of many clients) go out in one write.
          enableAutoPipelining: role === 'commands',
          lazyConnect: false,
        });
  let down = false;
  redis.on('error', (error: Error) => {
    if (!down) logger.warn({ message: 'Redis connection lost; retrying', connection: name, error: error.message });
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.log({ message: 'Redis connection back', connection: name });
    down = false;
  });
  return redis;
}

/** Where Redis is, for messages: the URL without credentials, or the cluster's seed nodes. */
export function describeRedis(target: RedisTarget): string {
  if (target.mode === 'cluster') return `cluster ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const url = new URL(target.url);
  return `${url.hostname}:${url.port || 6379}`;
}

/** Resolves once `redis` is ready; rejects with where it is on the first error. */
export function whenReady(redis: RedisClient, target: RedisTarget): Promise<RedisClient> {
  return new Promise((resolve, reject) => {
    if (redis.status === 'ready') return resolve(redis);
    redis.once('ready', () => resolve(redis));
    redis.once('error', (error: Error) =>
      reject(new Error(`Redis (${describeRedis(target)}) is not reachable: ${error.message}`)),
    );
  });
}

/** PUBLISH on one Redis, SPUBLISH (sharded pub/sub: only the channel's shard carries it) on a cluster. */
export function publishOn(redis: RedisClient, channel: string, message: string): Promise<number> {
  return redis instanceof Cluster
    ? (redis.spublish(channel, message) as Promise<number>)
    : redis.publish(channel, message);
}

/**
 * Every key matching `pattern`: SCAN on one Redis, on each master of a cluster (a cluster's SCAN covers
 * the node it is sent to only).
 */
export async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return [...new Set(keys)];
}

/** The connection options BullMQ takes: options of one Redis, or a Cluster client of its own (lazy). */
export function bullConnection(config: HeraldConfig): ConnectionOptions {
  const target = config.redis;
  if (target.mode === 'cluster') {
    return new Cluster(target.nodes, {
      ...clusterOptions(config, 'bullmq', 'subscriber'),
      shardedSubscribers: false,
      enableOfflineQueue: true,
      lazyConnect: true,
      // BullMQ's blocking commands must wait for the cluster, not fail after one retry.
      redisOptions: {
        ...credentialsOf(target),
        connectionName: `herald:${config.replicaId}:bullmq`,
        maxRetriesPerRequest: null,
      },
    });
  }
  const url = new URL(target.url);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    ...credentialsOf(target),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    // BullMQ's own backoff grows to 20 s: after a Redis outage of some seconds the sweep's worker came back
    // up to 20 s after Redis did. Ours, as the other connections': within 2 s.
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  };
}
