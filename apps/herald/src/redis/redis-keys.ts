/** Every Redis key and channel name Herald uses, under one prefix. */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** Pub/sub channel of one user's traffic. */
  userChannel(userId: string): string {
    return `${this.prefix}:u:${userId}`;
  }

  userFromChannel(channel: string): string | null {
    const head = `${this.prefix}:u:`;
    return channel.startsWith(head) ? channel.slice(head.length) : null;
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

  /** BullMQ key prefix. */
  bullPrefix(): string {
    return `${this.prefix}:bull`;
  }

  /** Every key of one BullMQ queue. */
  bullQueuePattern(queue: string): string {
    return `${this.bullPrefix()}:${queue}:*`;
  }
}
