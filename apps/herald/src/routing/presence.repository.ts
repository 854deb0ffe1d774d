import { Inject, Injectable } from '@nestjs/common';
import type { AdminConnection } from '@herald/protocol';
import { Redis } from 'ioredis';
import { SCHEMA_VERSION } from '../database/data-source';
import { REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';

/**
 * Entries written within the per-user cap, many in one call. KEYS: the replica's connections, then each
 * entry's user's connections; ARGV: replica id, TTL ms, cap, then each entry's connection id and entry.
 * Answers 1 (written) or 0 (refused) per entry, in order; an entry counts against the cap of those after it.
 */
const ADD_WITHIN_LIMIT = `
local replicaKey, replica, ttl, cap = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local added, written = {}, false
for i = 2, #KEYS do
  local userKey, id, entry = KEYS[i], ARGV[2 * i], ARGV[2 * i + 1]
  if redis.call('HEXISTS', userKey, id) == 0 and redis.call('HLEN', userKey) >= cap then
    added[i - 1] = 0
  else
    redis.call('HSET', replicaKey, id, entry)
    redis.call('HSET', userKey, id, replica)
    redis.call('PEXPIRE', userKey, ttl)
    added[i - 1] = 1
    written = true
  end
end
if written then redis.call('PEXPIRE', replicaKey, ttl) end
return added
`;

/** A replica's entries live three beats: a replica that stops beating is gone within that. */
export function presenceTtlMs(heartbeatMs: number): number {
  return 3 * heartbeatMs;
}

/**
 * A replica's beat as `beats` reads it: its id, and the schema (last migration) of its build, null from a
 * version before the stream record, whose beats carry none.
 */
export interface ReplicaBeat {
  replicaId: string;
  schema: string | null;
}

/** What the presence store keeps of one live connection: the console's view of it, without the user's facts. */
export type PresenceEntry = Omit<AdminConnection, 'topics' | 'lastAckAt'>;

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

  /**
   * Writes entries of one replica in one atomic step (one script call), each unless its user already holds
   * `maxPerUser` connections (counted across replicas, and those before it in `entries`): true when written,
   * false when refused, in their order.
   */
  async addMany(entries: PresenceEntry[], ttlMs: number, maxPerUser: number): Promise<boolean[]> {
    if (entries.length === 0) return [];
    const replicaId = entries[0]!.replicaId;
    if (entries.some((e) => e.replicaId !== replicaId)) throw new Error('addMany takes the entries of one replica');
    const added = (await this.redis.eval(
      ADD_WITHIN_LIMIT,
      1 + entries.length,
      this.keys.replicaConnections(replicaId),
      ...entries.map((e) => this.keys.userConnections(e.userId)),
      replicaId,
      ttlMs,
      maxPerUser,
      ...entries.flatMap((e) => [e.connectionId, JSON.stringify(e)]),
    )) as number[];
    return entries.map((_, i) => added[i] === 1);
  }

  /** Removes the entries of several of the replica's connections (closed together) in one transaction. */
  async removeMany(replicaId: string, connections: { userId: string; connectionId: string }[]): Promise<void> {
    if (connections.length === 0) return;
    const multi = this.redis
      .multi()
      .hdel(this.keys.replicaConnections(replicaId), ...connections.map((c) => c.connectionId));
    for (const c of connections) multi.hdel(this.keys.userConnections(c.userId), c.connectionId);
    await multi.exec();
  }

  /**
   * Marks the replica alive, with this build's schema, and extends the life of its entries. When the
   * replica's key was gone (Redis restarted empty, or this replica was
   * presumed dead), writes every live connection again; returns how many.
   */
  async beat(replicaId: string, connections: PresenceEntry[], ttlMs: number): Promise<number> {
    const conns = this.keys.replicaConnections(replicaId);
    const previous = await this.redis.set(
      this.keys.replica(replicaId),
      JSON.stringify({
        replicaId,
        connections: connections.length,
        at: new Date().toISOString(),
        schema: SCHEMA_VERSION,
      }),
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

  /**
   * True when the user has a connection that its replica still lists, on a
   * replica that is still beating. Entries that fail either test are ghosts
   * (a dead replica, or a replica restarted under the same id) and are pruned.
   */
  async isOnline(userId: string): Promise<boolean> {
    return (await this.onlineUsers([userId])).has(userId);
  }

  /** `isOnline` for many users, in three round trips whatever their number. */
  async onlineUsers(userIds: string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const read = this.redis.pipeline();
    for (const userId of userIds) read.hgetall(this.keys.userConnections(userId));
    const hashes = ((await read.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return Object.entries(value as Record<string, string>);
    });
    const entries = userIds.flatMap((userId, u) =>
      hashes[u]!.map(([connectionId, replica]) => ({ userId, connectionId, replica })),
    );
    if (entries.length === 0) return new Set();
    const replicas = [...new Set(entries.map((e) => e.replica))];
    const check = this.redis.pipeline();
    for (const replica of replicas) check.exists(this.keys.replica(replica));
    for (const e of entries) check.hexists(this.keys.replicaConnections(e.replica), e.connectionId);
    const results = (await check.exec()) ?? [];
    const alive = new Set(replicas.filter((_, i) => results[i]?.[1] === 1));
    const online = new Set<string>();
    const prune = this.redis.pipeline();
    let ghosts = 0;
    entries.forEach((e, i) => {
      if (alive.has(e.replica) && results[replicas.length + i]?.[1] === 1) {
        online.add(e.userId);
      } else {
        prune.hdel(this.keys.userConnections(e.userId), e.connectionId);
        ghosts += 1;
      }
    });
    if (ghosts > 0) await prune.exec();
    return online;
  }

  /** Every live connection across replicas. */
  async list(): Promise<PresenceEntry[]> {
    const entries: PresenceEntry[] = [];
    for (const replicaId of await this.replicaIds()) {
      const values = await this.redis.hvals(this.keys.replicaConnections(replicaId));
      for (const value of values) entries.push(JSON.parse(value) as PresenceEntry);
    }
    return entries;
  }

  /** The beat of every replica beating now, of any version (one written by no Herald reads as no schema). */
  async beats(): Promise<ReplicaBeat[]> {
    const replicaIds = await this.replicaIds();
    if (replicaIds.length === 0) return [];
    const values = await this.redis.mget(replicaIds.map((id) => this.keys.replica(id)));
    return replicaIds.flatMap((replicaId, i) => {
      const value = values[i];
      // Expired between the scan and the read: no longer beating.
      if (value === null || value === undefined) return [];
      return [{ replicaId, schema: schemaOf(value) }];
    });
  }

  private async replicaIds(): Promise<string[]> {
    const head = this.keys.replica('');
    const ids: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', this.keys.replicaPattern(), 'COUNT', 200);
      cursor = next;
      ids.push(...batch.map((key) => key.slice(head.length)));
    } while (cursor !== '0');
    return [...new Set(ids)];
  }

  /** At start: drop what an earlier process under the same replica id left behind. */
  async resetReplica(replicaId: string): Promise<void> {
    await this.redis.del(this.keys.replicaConnections(replicaId));
  }

  /** On a clean shutdown: forget this replica and its connections now rather than at expiry. */
  async removeReplica(replicaId: string, connections: { userId: string; connectionId: string }[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    pipeline.del(this.keys.replica(replicaId), this.keys.replicaConnections(replicaId));
    for (const c of connections) pipeline.hdel(this.keys.userConnections(c.userId), c.connectionId);
    await pipeline.exec();
  }
}

function schemaOf(beat: string): string | null {
  try {
    const parsed = JSON.parse(beat) as { schema?: unknown };
    return typeof parsed.schema === 'string' ? parsed.schema : null;
  } catch {
    return null;
  }
}
