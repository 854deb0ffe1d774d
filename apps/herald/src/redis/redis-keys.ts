/**
 * Every Redis key and channel name Herald uses, under one prefix. On a cluster, every command and script
 * names keys of one hash slot only; the keys that must share one carry a hash tag (`{…}`).
 */
export class RedisKeys {
  constructor(
    readonly prefix: string,
    /** Running on a Redis Cluster: BullMQ's keys take a hash tag. */
    readonly cluster = false,
  ) {}

  /** The keys of a configuration: its prefix, and whether it runs on a cluster. */
  static of(config: { redisPrefix: string; redis: { mode: 'single' | 'cluster' } }): RedisKeys {
    return new RedisKeys(config.redisPrefix, config.redis.mode === 'cluster');
  }

  /**
   * Pub/sub channel of one replica: what the other replicas send to the users it holds (they find it in
   * presence). A replica subscribes to it and the broadcast channel only, however many users it holds.
   */
  replicaChannel(replicaId: string): string {
    return `${this.prefix}:r:${replicaId}`;
  }

  /** Pub/sub channel of topic and everyone broadcasts: every replica hears it once. */
  broadcastChannel(): string {
    return `${this.prefix}:broadcast`;
  }

  /** A replica's liveness key (expires when it stops beating). */
  replica(replicaId: string): string {
    return `${this.prefix}:replica:${replicaId}`;
  }

  replicaPattern(): string {
    return `${this.prefix}:replica:*`;
  }

  /** Hash connectionId → connection info of one replica. */
  replicaConnections(replicaId: string): string {
    return `${this.prefix}:conns:${replicaId}`;
  }

  /** Hash connectionId → replicaId of one user. */
  userConnections(userId: string): string {
    return `${this.prefix}:user:${userId}`;
  }

  /** Pub/sub channel of the admin console's live events (every replica relays it to its admin streams). */
  adminChannel(): string {
    return `${this.prefix}:admin:events`;
  }

  /** Counter of wrong admin passwords from one client address, for the current minute. */
  adminLoginFailures(address: string): string {
    return `${this.prefix}:admin:login-failures:${address}`;
  }

  /**
   * A publisher key's token bucket (`notifications` or `recipients`): both in one hash slot (`{pub:<keyId>}`),
   * so one script may take from both on Redis Cluster.
   */
  publisherBucket(keyId: string, bucket: 'notifications' | 'recipients'): string {
    return `${this.prefix}:{pub:${keyId}}:${bucket}`;
  }

  /** A connection ticket, by the SHA-256 of the ticket (the ticket itself is never stored). */
  ticket(digest: string): string {
    return `${this.prefix}:ticket:${digest}`;
  }

  /** Tickets minted for one user (or the console) in the current minute. */
  ticketMints(audience: 'user' | 'admin', subject: string): string {
    return `${this.prefix}:ticket-mints:${audience}:${subject}`;
  }

  /**
   * BullMQ key prefix. On a cluster in a hash tag, as BullMQ requires there: a queue's scripts name several
   * of its keys at once.
   */
  bullPrefix(): string {
    return this.cluster ? `{${this.prefix}:bull}` : `${this.prefix}:bull`;
  }

  /** Every key of one BullMQ queue. */
  bullQueuePattern(queue: string): string {
    return `${this.bullPrefix()}:${queue}:*`;
  }
}
