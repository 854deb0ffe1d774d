import { Inject, Injectable, Logger } from '@nestjs/common';
import { Batcher } from '../common/batcher';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { RedeliveryRepository } from '../record/redelivery.repository';
import { PresenceEntry, PresenceRepository, presenceTtlMs } from '../routing/presence.repository';
import type { Connection } from './connection';
import { ConnectionRegistry } from './connection-registry';

/** A connection's presence entry, as its removal names it. */
interface EntryKey {
  userId: string;
  connectionId: string;
}

/**
 * This replica's connections in the presence every replica reads (PresenceRepository, in Redis): written at
 * setup within the per-user cap, renewed at every beat (written back when Redis lost them, and the users'
 * parked deliveries resumed), removed at close (retried at the next beat when Redis did not answer), and
 * forgotten at start and at shutdown.
 */
@Injectable()
export class ConnectionPresence {
  private readonly logger = new Logger(ConnectionPresence.name);
  /** The connections whose entry was written (by `admit`) and not removed since. */
  private readonly present = new WeakSet<Connection>();
  /** connectionId → userId of presence entries whose removal failed. */
  private readonly pendingRemovals = new Map<string, string>();
  /** Users whose parked deliveries are resumed again at the next beat (after presence was restored). */
  private resumeAtNextBeat: string[] = [];
  /** The entries of connections set up together, written in one step (`PresenceRepository.addMany`). */
  private readonly adds = new Batcher<PresenceEntry, boolean>(
    (entries) => this.presence.addMany(entries, this.ttlMs, this.config.maxConnectionsPerUser),
    { windowMs: 0, maxBatch: 500, maxInFlight: 1 },
  );
  /**
   * The entries of connections closed together (a proxy restart closes thousands at once), removed together
   * (`PresenceRepository.removeMany`): one command per key, auto-pipelined into one write per Redis node.
   */
  private readonly removals = new Batcher<EntryKey, void>(
    async (keys) => {
      await this.presence.removeMany(this.config.replicaId, keys);
      return keys.map(() => undefined);
    },
    { windowMs: 0, maxBatch: 500, maxInFlight: 2 },
  );

  constructor(
    private readonly presence: PresenceRepository,
    private readonly registry: ConnectionRegistry,
    private readonly deliveries: RedeliveryRepository,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
  ) {}

  private get ttlMs(): number {
    return presenceTtlMs(this.config.presenceHeartbeatMs);
  }

  /** At start: a replica restarted under the same id must not inherit its predecessor's connections. */
  reset(): Promise<void> {
    return this.presence.resetReplica(this.config.replicaId);
  }

  private entry(connection: Connection): PresenceEntry {
    return {
      connectionId: connection.id,
      userId: connection.userId,
      replicaId: this.config.replicaId,
      connectedAt: new Date(connection.info.connectedAt).toISOString(),
      remoteAddress: connection.info.remoteAddress,
      userAgent: connection.info.userAgent,
    };
  }

  /**
   * Writes the connection's entry within the per-user cap (HERALD_MAX_CONNECTIONS_PER_USER): the entry, or
   * null when the user has as many connections already. The cap is checked and the entry written in one step
   * in Redis, so racing connects of one user on several replicas cannot all slip under it. Entries of dead
   * replicas are pruned first.
   */
  async admit(connection: Connection): Promise<PresenceEntry | null> {
    const entry = this.entry(connection);
    let admitted = await this.add(entry);
    if (!admitted) {
      await this.presence.isOnline(connection.userId); // prunes the user's entries of dead replicas
      admitted = await this.add(entry);
    }
    if (!admitted) return null;
    this.present.add(connection);
    return entry;
  }

  /**
   * Removes the connection's entry; one that cannot be removed now is retried at the next beat. False when
   * `admit` wrote none.
   */
  async remove(connection: Connection): Promise<boolean> {
    if (!this.present.delete(connection)) return false;
    await this.removeEntry(connection.userId, connection.id);
    return true;
  }

  /**
   * Writes the presence entry within the per-user cap, in one step with those of other connections set up
   * at the same time. When Redis does not answer, the script may have run all the same: the entry is queued
   * for removal, so it cannot hold one of the user's slots.
   */
  private async add(entry: PresenceEntry): Promise<boolean> {
    try {
      return await this.adds.add(entry);
    } catch (error) {
      this.pendingRemovals.set(entry.connectionId, entry.userId);
      throw error;
    }
  }

  private async removeEntry(userId: string, connectionId: string): Promise<boolean> {
    try {
      await this.removals.add({ userId, connectionId });
      this.pendingRemovals.delete(connectionId);
      return true;
    } catch (error) {
      if (!this.pendingRemovals.has(connectionId)) {
        this.logger.warn({
          message: 'presence removal failed; retried at the next beat',
          error: (error as Error).message,
        });
      }
      this.pendingRemovals.set(connectionId, userId);
      return false;
    }
  }

  /** The removals that failed, tried again through the same batches (500 at a time). */
  private async retryRemovals(): Promise<void> {
    await Promise.all(
      [...this.pendingRemovals].map(([connectionId, userId]) => this.removeEntry(userId, connectionId)),
    );
  }

  /**
   * One beat, every HERALD_PRESENCE_HEARTBEAT_MS: failed removals are retried, and the entries of this
   * replica's connections renewed, or written back if Redis lost them. Never throws.
   */
  async beat(): Promise<void> {
    await this.retryRemovals();
    try {
      const connections = this.presentConnections();
      const restored = await this.presence.beat(
        this.config.replicaId,
        connections.map((c) => this.entry(c)),
        this.ttlMs,
      );
      // Once now, and once more at the next beat: a sweep or check that read presence just before it
      // was written back may park after the first pass.
      const again = this.resumeAtNextBeat;
      this.resumeAtNextBeat = restored > 0 ? connections.map((c) => c.userId) : [];
      if (restored > 0) {
        await this.removeClosed(connections);
        const resumed = await this.resumeParked(this.resumeAtNextBeat);
        this.logger.warn({ message: 'presence was lost in Redis; re-registered', connections: restored, resumed });
      } else if (again.length > 0) {
        await this.resumeParked(again);
      }
    } catch (error) {
      this.logger.warn({ message: 'presence heartbeat failed', error: (error as Error).message });
    }
  }

  /** This replica's connections whose entry was written and not removed. */
  private presentConnections(): Connection[] {
    return [...this.registry.all()].filter((c) => this.present.has(c));
  }

  /** After writing `connections` back: those that closed meanwhile were written back too, and go again. */
  private async removeClosed(connections: Connection[]): Promise<void> {
    for (const c of connections) if (this.registry.get(c.id) !== c) await this.removeEntry(c.userId, c.id);
  }

  /**
   * Writes every entry of this replica again (the bus's return, before its catch-up reads the record): on a
   * cluster, a failover may have lost the last entries a master acknowledged, and the other replicas route
   * to this one through them. Throws when Redis does not answer.
   */
  async rewriteAll(): Promise<void> {
    const connections = this.presentConnections();
    await this.presence.rewrite(
      this.config.replicaId,
      connections.map((c) => this.entry(c)),
      this.ttlMs,
    );
    await this.removeClosed(connections);
  }

  /**
   * Presence was lost in Redis and written again: while it was missing, redelivery checks and the sweep
   * took these connected users for offline and parked their deliveries. Due again now; the sweep sends them.
   */
  private resumeParked(userIds: string[]): Promise<number> {
    return this.deliveries.unparkUsers([...new Set(userIds)]);
  }

  /**
   * Shutdown: this replica's entries of `connections` forgotten at once, so clients reconnecting elsewhere do
   * not find their own closing connections still counted (the per-user cap) or listed. Never throws.
   */
  async forgetAll(connections: Connection[]): Promise<void> {
    try {
      await this.presence.removeReplica(
        this.config.replicaId,
        connections.map((c) => ({ userId: c.userId, connectionId: c.id })),
      );
    } catch (error) {
      this.logger.warn({ message: 'could not clear presence; it expires alone', error: (error as Error).message });
    }
  }
}
