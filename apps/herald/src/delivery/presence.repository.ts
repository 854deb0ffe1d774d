import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';

/** What the presence store keeps of one live connection. */
export interface PresenceEntry {
  connectionId: string;
  userId: string;
  replicaId: string;
  connectedAt: string;
  remoteAddress: string;
  userAgent: string;
}

/**
 * Live connections of every replica in Redis. Each replica's entries expire
 * unless it keeps beating, so a dead replica's connections disappear alone.
 */
@Injectable()
export class PresenceRepository {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async add(entry: PresenceEntry, ttlMs: number): Promise<void> {
    const conns = this.keys.replicaConnections(entry.replicaId);
    const user = this.keys.userConnections(entry.userId);
    await this.redis
      .multi()
      .hset(conns, entry.connectionId, JSON.stringify(entry))
      .pexpire(conns, ttlMs)
      .hset(user, entry.connectionId, entry.replicaId)
      .pexpire(user, ttlMs)
      .exec();
  }

  async remove(replicaId: string, userId: string, connectionId: string): Promise<void> {
    await this.redis
      .multi()
      .hdel(this.keys.replicaConnections(replicaId), connectionId)
      .hdel(this.keys.userConnections(userId), connectionId)
      .exec();
  }

  /**
   * Marks the replica alive and extends the life of its entries. When the
   * replica's key was gone (Redis restarted empty, or this replica was
   * presumed dead), writes every live connection again; returns how many.
   */
  async beat(replicaId: string, connections: PresenceEntry[], ttlMs: number): Promise<number> {
    const conns = this.keys.replicaConnections(replicaId);
    const previous = await this.redis.set(
      this.keys.replica(replicaId),
      JSON.stringify({ replicaId, connections: connections.length, at: new Date().toISOString() }),
      'PX',
      ttlMs,
      'GET',
    );
    const pipeline = this.redis.pipeline();
    const restore = previous === null && connections.length > 0;
    for (const entry of connections) {
      const user = this.keys.userConnections(entry.userId);
      if (restore) {
        pipeline.hset(conns, entry.connectionId, JSON.stringify(entry));
        pipeline.hset(user, entry.connectionId, replicaId);
      }
      pipeline.pexpire(user, ttlMs);
    }
    pipeline.pexpire(conns, ttlMs);
    await pipeline.exec();
    return restore ? connections.length : 0;
  }

  /** True when the user has a connection on a replica that is still beating. */
  async isOnline(userId: string): Promise<boolean> {
    const byConnection = await this.redis.hgetall(this.keys.userConnections(userId));
    const replicas = [...new Set(Object.values(byConnection))];
    if (replicas.length === 0) return false;
    const alive = await this.redis.mget(replicas.map((r) => this.keys.replica(r)));
    const dead = replicas.filter((_, i) => alive[i] === null);
    if (dead.length > 0) {
      const stale = Object.entries(byConnection)
        .filter(([, replica]) => dead.includes(replica))
        .map(([connectionId]) => connectionId);
      await this.redis.hdel(this.keys.userConnections(userId), ...stale);
    }
    return alive.some((value) => value !== null);
  }

  /** Every live connection across replicas. */
  async list(): Promise<PresenceEntry[]> {
    const replicaKeys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', this.keys.replicaPattern(), 'COUNT', 200);
      cursor = next;
      replicaKeys.push(...batch);
    } while (cursor !== '0');
    const head = this.keys.replica('');
    const entries: PresenceEntry[] = [];
    for (const key of replicaKeys) {
      const values = await this.redis.hvals(this.keys.replicaConnections(key.slice(head.length)));
      for (const value of values) entries.push(JSON.parse(value) as PresenceEntry);
    }
    return entries;
  }

  /** On a clean shutdown: forget this replica and its connections now rather than at expiry. */
  async removeReplica(replicaId: string, connections: { userId: string; connectionId: string }[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    pipeline.del(this.keys.replica(replicaId), this.keys.replicaConnections(replicaId));
    for (const c of connections) pipeline.hdel(this.keys.userConnections(c.userId), c.connectionId);
    await pipeline.exec();
  }
}
