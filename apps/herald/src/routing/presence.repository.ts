import { Inject, Injectable } from '@nestjs/common';
import type { AdminConnection } from '@herald/protocol';
import calculateSlot from 'cluster-key-slot';
import { SCHEMA_VERSION } from '../database/data-source';
import { RedisClient, scanKeys } from '../redis/redis-client';
import { REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';

/**
 * Users' entries written within the per-user cap, many in one call. KEYS: users' connection hashes, all in
 * one hash slot; ARGV: replica id, TTL ms, cap, then each entry's connection id. Answers 1 (written) or 0
 * (refused) per entry, in order; an entry counts against the cap of those after it.
 */
const ADD_WITHIN_LIMIT = `
local replica, ttl, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local added = {}
for i = 1, #KEYS do
  local userKey, id = KEYS[i], ARGV[3 + i]
  if redis.call('HEXISTS', userKey, id) == 0 and redis.call('HLEN', userKey) >= cap then
    added[i] = 0
  else
    redis.call('HSET', userKey, id, replica)
    redis.call('PEXPIRE', userKey, ttl)
    added[i] = 1
  end
end
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
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /**
   * Writes entries of one replica, each unless its user already holds `maxPerUser` connections (counted
   * across replicas, and those before it in `entries`): true when written, false when refused, in their
   * order. The replica's list is written first, so a reader that finds a user's entry finds it listed too
   * (`onlineUsers` prunes the unlisted); then one script per hash slot of users checks the cap and writes
   * (every user on one Redis, so one script); a refused entry leaves the replica's list again.
   */
  async addMany(entries: PresenceEntry[], ttlMs: number, maxPerUser: number): Promise<boolean[]> {
    if (entries.length === 0) return [];
    const replicaId = entries[0]!.replicaId;
    if (entries.some((e) => e.replicaId !== replicaId)) throw new Error('addMany takes the entries of one replica');
    const conns = this.keys.replicaConnections(replicaId);
    await Promise.all([
      this.redis.hset(conns, ...entries.flatMap((e) => [e.connectionId, JSON.stringify(e)])),
      this.redis.pexpire(conns, ttlMs),
    ]);
    const added: boolean[] = [];
    await Promise.all(
      [...this.bySlot(entries, (e) => this.keys.userConnections(e.userId))].map(async (group) => {
        const result = (await this.redis.eval(
          ADD_WITHIN_LIMIT,
          group.length,
          ...group.map(({ item }) => this.keys.userConnections(item.userId)),
          replicaId,
          ttlMs,
          maxPerUser,
          ...group.map(({ item }) => item.connectionId),
        )) as number[];
        group.forEach(({ index }, i) => (added[index] = result[i] === 1));
      }),
    );
    const refused = entries.filter((_, i) => !added[i]).map((e) => e.connectionId);
    if (refused.length > 0) await this.redis.hdel(conns, ...refused);
    return added;
  }

  /**
   * `items` grouped by the hash slot of their key, in their order within each group, with their index: on a
   * cluster a script names keys of one slot only. On one Redis, one group.
   */
  private bySlot<T>(items: T[], keyOf: (item: T) => string): Iterable<{ item: T; index: number }[]> {
    const groups = new Map<number, { item: T; index: number }[]>();
    items.forEach((item, index) => {
      const slot = this.keys.cluster ? calculateSlot(keyOf(item)) : 0;
      const group = groups.get(slot);
      if (group) group.push({ item, index });
      else groups.set(slot, [{ item, index }]);
    });
    return groups.values();
  }

  /** Removes the entries of several of the replica's connections (closed together): one command per key. */
  async removeMany(replicaId: string, connections: { userId: string; connectionId: string }[]): Promise<void> {
    if (connections.length === 0) return;
    await Promise.all([
      this.redis.hdel(this.keys.replicaConnections(replicaId), ...connections.map((c) => c.connectionId)),
      ...connections.map((c) => this.redis.hdel(this.keys.userConnections(c.userId), c.connectionId)),
    ]);
  }

  /**
   * Where each user's connections are, as presence lists them: connection id → replica id, per user, in
   * order. Entries of a dead replica are still there until they expire or `onlineUsers` prunes them.
   */
  async holders(userIds: string[]): Promise<Record<string, string>[]> {
    return Promise.all(userIds.map((userId) => this.redis.hgetall(this.keys.userConnections(userId))));
  }

  /** The replicas holding each user's connections (one per connection, repeats included), per user, in order. */
  replicasOf(userIds: string[]): Promise<string[][]> {
    return Promise.all(userIds.map((userId) => this.redis.hvals(this.keys.userConnections(userId))));
  }

  /** The replica holding one connection of the user, as presence lists it; null when none does. */
  replicaOfConnection(userId: string, connectionId: string): Promise<string | null> {
    return this.redis.hget(this.keys.userConnections(userId), connectionId);
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
    if (previous === null && connections.length > 0) {
      await this.rewrite(replicaId, connections, ttlMs);
      return connections.length;
    }
    // One command per key, auto-pipelined: on a cluster the users' keys are in as many slots.
    await Promise.all([
      ...connections.map((entry) => this.redis.pexpire(this.keys.userConnections(entry.userId), ttlMs)),
      this.redis.pexpire(conns, ttlMs),
    ]);
    return 0;
  }

  /**
   * Writes every entry of the replica again, whatever Redis holds: after Redis lost them, or after a failover
   * on a cluster, where a promoted replica may lack the last writes its master acknowledged. The replica's
   * list first, as `addMany` does.
   */
  async rewrite(replicaId: string, connections: PresenceEntry[], ttlMs: number): Promise<void> {
    if (connections.length === 0) return;
    const conns = this.keys.replicaConnections(replicaId);
    await Promise.all([
      this.redis.hset(conns, ...connections.flatMap((e) => [e.connectionId, JSON.stringify(e)])),
      this.redis.pexpire(conns, ttlMs),
    ]);
    // Each user's HSET and PEXPIRE go out together (one key, one node: Redis runs them in order).
    await Promise.all(
      connections.flatMap((entry) => {
        const user = this.keys.userConnections(entry.userId);
        return [this.redis.hset(user, entry.connectionId, replicaId), this.redis.pexpire(user, ttlMs)];
      }),
    );
  }

  /**
   * True when the user has a connection that its replica still lists, on a
   * replica that is still beating. Entries that fail either test are ghosts
   * (a dead replica, or a replica restarted under the same id) and are pruned.
   */
  async isOnline(userId: string): Promise<boolean> {
    return (await this.onlineUsers([userId])).has(userId);
  }

  /** `isOnline` for many users, in three rounds of commands (auto-pipelined) whatever their number. */
  async onlineUsers(userIds: string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const hashes = (await this.holders(userIds)).map((hash) => Object.entries(hash));
    const entries = userIds.flatMap((userId, u) =>
      hashes[u]!.map(([connectionId, replica]) => ({ userId, connectionId, replica })),
    );
    if (entries.length === 0) return new Set();
    const replicas = [...new Set(entries.map((e) => e.replica))];
    const [living, listed] = await Promise.all([
      Promise.all(replicas.map((replica) => this.redis.exists(this.keys.replica(replica)))),
      Promise.all(entries.map((e) => this.redis.hexists(this.keys.replicaConnections(e.replica), e.connectionId))),
    ]);
    const alive = new Set(replicas.filter((_, i) => living[i] === 1));
    const online = new Set<string>();
    const ghosts: Promise<number>[] = [];
    entries.forEach((e, i) => {
      if (alive.has(e.replica) && listed[i] === 1) online.add(e.userId);
      else ghosts.push(this.redis.hdel(this.keys.userConnections(e.userId), e.connectionId));
    });
    await Promise.all(ghosts);
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
    // One GET per replica: on a cluster their keys are in as many slots.
    const values = await Promise.all(replicaIds.map((id) => this.redis.get(this.keys.replica(id))));
    return replicaIds.flatMap((replicaId, i) => {
      const value = values[i];
      // Expired between the scan and the read: no longer beating.
      if (value === null || value === undefined) return [];
      return [{ replicaId, schema: schemaOf(value) }];
    });
  }

  private async replicaIds(): Promise<string[]> {
    const head = this.keys.replica('');
    return (await scanKeys(this.redis, this.keys.replicaPattern())).map((key) => key.slice(head.length));
  }

  /** At start: drop what an earlier process under the same replica id left behind. */
  async resetReplica(replicaId: string): Promise<void> {
    await this.redis.del(this.keys.replicaConnections(replicaId));
  }

  /** On a clean shutdown: forget this replica and its connections now rather than at expiry. */
  async removeReplica(replicaId: string, connections: { userId: string; connectionId: string }[]): Promise<void> {
    await Promise.all([
      this.redis.del(this.keys.replica(replicaId)),
      this.redis.del(this.keys.replicaConnections(replicaId)),
      ...connections.map((c) => this.redis.hdel(this.keys.userConnections(c.userId), c.connectionId)),
    ]);
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
