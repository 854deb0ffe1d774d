import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { REDIS } from '../redis/redis.module';
import { publishOn, RedisClient } from '../redis/redis-client';
import { RedisKeys } from '../redis/redis-keys';
import { Subscriber } from '../redis/subscriber';
import { withTimeout } from '../common/timeout';
import { BroadcastMessage, Bus, BusHandlers, BusMessage, UserMessage } from './bus';
import { PresenceRepository } from './presence.repository';

/** How long a probe may take to come back before the subscriptions are taken for not yet active. */
const PROBE_TIMEOUT_MS = 2000;
/**
 * A probe is published again this often until it is heard: one published before the subscriber had
 * subscribed again is never heard, and waiting out its timeout kept a replica's bus away for 4 s after a
 * moved slot on a loaded machine (the cluster test's live reshard, bound 2 s).
 */
const PROBE_REPEAT_MS = 200;
/** While the subscriber is away, its return is tried this often (and at once when it says it is back). */
const CONFIRM_RETRY_MS = 1000;

/**
 * On one Redis, a direct message's route in one round trip: the recipients' presence read and the message
 * published to each replica holding any of them, with the users it holds there. KEYS: the users' presence
 * hashes; ARGV: the replica channels' prefix, the message (a JSON object), then each user's id as a JSON
 * string, in KEYS order. Answers how many users had a listening replica. (A cluster cannot run it:
 * the replicas' channels are in other slots than the users' hashes.)
 */
const ROUTE = `
local byReplica, order = {}, {}
for i = 1, #KEYS do
  local user = ARGV[2 + i]
  for _, replica in ipairs(redis.call('HVALS', KEYS[i])) do
    local users = byReplica[replica]
    if not users then
      users = {}
      byReplica[replica] = users
      order[#order + 1] = replica
    end
    if users[#users] ~= user then users[#users + 1] = user end
  end
end
local reached, count = {}, 0
local body = string.sub(ARGV[2], 2)
for _, replica in ipairs(order) do
  local users = byReplica[replica]
  local raw = '{"userIds":[' .. table.concat(users, ',') .. '],' .. body
  if redis.call('PUBLISH', ARGV[1] .. replica, raw) > 0 then
    for _, user in ipairs(users) do
      if not reached[user] then
        reached[user] = true
        count = count + 1
      end
    end
  end
end
return {count, #order}
`;

type Route = (...args: (string | number)[]) => Promise<[number, number]>;

/**
 * The Bus on Redis pub/sub (sharded on a cluster), with a fixed set of channels (ADR 0019): one per replica,
 * which carries what is sent to the users it holds, found in presence; and one for broadcasts, which every
 * replica hears. A replica subscribes to those two once, at start: a connection costs no subscription.
 */
@Injectable()
export class RedisBus extends Bus implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisBus.name);
  private readonly subscriber: Subscriber;
  /** This replica's channel, and the broadcast channel. */
  private readonly channel: string;
  private readonly broadcast: string;
  private handlers: BusHandlers | null = null;
  private readonly returnListeners = new Set<() => void>();
  /** Since when the subscriptions may have missed messages (undefined: confirmed active). */
  private awaySince: number | undefined;
  /** Counts every drop, so a confirmation that a drop overtook is not taken for a return. */
  private drops = 0;
  private confirming = false;
  private confirmRetry?: NodeJS.Timeout;
  /** ROUTE, on one Redis; null on a cluster. */
  private readonly route: Route | null;
  /** Probes published and not yet heard back: probe id → what hearing it on a channel does. */
  private readonly probes = new Map<string, (channel: string) => void>();
  private closing = false;
  /** Set once the first subscriptions are made: before, the subscriber's connection events are its start. */
  private started = false;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(HERALD_CONFIG) config: HeraldConfig,
    private readonly keys: RedisKeys,
    private readonly presence: PresenceRepository,
    private readonly metrics: MetricsService,
  ) {
    super();
    this.channel = keys.replicaChannel(config.replicaId);
    this.broadcast = keys.broadcastChannel();
    this.subscriber = new Subscriber(config, 'subscriber', metrics, {
      message: (channel, raw) => this.dispatch(channel, raw),
      down: () => this.dropped('bus subscriber dropped'),
      up: () => void this.back(),
    });
    if (redis instanceof Cluster) {
      this.route = null;
    } else {
      redis.defineCommand('heraldRoute', { lua: ROUTE });
      this.route = (redis as unknown as { heraldRoute: Route }).heraldRoute.bind(redis);
    }
    // On a cluster, a failover can lose the last writes the failed master acknowledged: this replica's presence
    // entries among them, through which the others route to it. Its return writes them again (BusCatchUp).
    if (redis instanceof Cluster) redis.on('-node', () => this.dropped('a Redis Cluster node left'));
  }

  async onModuleInit(): Promise<void> {
    await this.subscriber.subscribe([this.channel, this.broadcast]);
    this.started = true;
    // Subscribed is not yet heard (a cluster's sharded subscribers settle on the topology): until a probe
    // comes back, what the bus brings is left to the catch-up, as after a drop.
    await this.probe().catch(() => this.dropped('bus subscriptions not confirmed at start'));
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    clearTimeout(this.confirmRetry);
    this.returnListeners.clear();
    await this.subscriber.close();
  }

  get receiving(): boolean {
    return this.awaySince === undefined;
  }

  onReturn(listener: () => void): () => void {
    this.returnListeners.add(listener);
    return () => this.returnListeners.delete(listener);
  }

  private dropped(why: string): void {
    if (this.closing || !this.started) return;
    this.drops += 1;
    if (this.awaySince !== undefined) return;
    this.awaySince = Date.now();
    this.logger.warn({ message: `${why}; catching up on its return` });
    // The first try soon: its probe is published again until heard, so it confirms as soon as the
    // subscriptions are back; later tries (Redis away, not resubscribed within the probe's timeout) wait longer.
    this.retryConfirm(PROBE_REPEAT_MS);
  }

  private retryConfirm(delayMs = CONFIRM_RETRY_MS): void {
    clearTimeout(this.confirmRetry);
    this.confirmRetry = setTimeout(() => void this.back(), delayMs);
  }

  /**
   * The subscriber may be back. Confirmed by a probe published on both channels and heard on both: from then
   * on the bus brings every publish, and whatever came before is in the record for the catch-up to read. Not
   * confirmed (not resubscribed yet, Redis away): tried again shortly.
   */
  private async back(): Promise<void> {
    const since = this.awaySince;
    if (since === undefined || this.closing || this.confirming) return;
    this.confirming = true;
    const drops = this.drops;
    try {
      await this.probe();
    } catch (error) {
      this.logger.warn({ message: 'bus subscriber not confirmed yet', error: (error as Error).message });
      if (!this.closing) this.retryConfirm();
      return;
    } finally {
      this.confirming = false;
    }
    if (this.closing) return;
    if (this.drops !== drops) {
      this.retryConfirm();
      return;
    }
    clearTimeout(this.confirmRetry);
    this.awaySince = undefined;
    this.metrics.busReturns.inc();
    this.logger.log({ message: 'bus subscriber back; subscriptions confirmed', awayMs: Date.now() - since });
    for (const listener of this.returnListeners) listener();
  }

  /**
   * Publishes a probe on this replica's channel and the broadcast channel, again every PROBE_REPEAT_MS until
   * heard; resolves once both came back (other replicas ignore a probe id they did not send).
   */
  private async probe(): Promise<void> {
    const probeId = randomUUID();
    const channels = [this.channel, this.broadcast];
    const heard = new Set<string>();
    const done = new Promise<void>((resolve) =>
      this.probes.set(probeId, (channel) => {
        heard.add(channel);
        if (heard.size === channels.length) resolve();
      }),
    );
    const raw = JSON.stringify({ kind: 'probe', probeId });
    const publish = () => Promise.all(channels.map((channel) => publishOn(this.redis, channel, raw)));
    let repeat: NodeJS.Timeout | undefined;
    try {
      await publish();
      repeat = setInterval(() => void publish().catch(() => undefined), PROBE_REPEAT_MS);
      await withTimeout(done, PROBE_TIMEOUT_MS, 'probe');
    } finally {
      clearInterval(repeat);
      this.probes.delete(probeId);
    }
  }

  setHandlers(handlers: BusHandlers): void {
    this.handlers = handlers;
  }

  async publishToUsers(userIds: string[], message: UserMessage): Promise<number> {
    // A delivery or an inbox change goes to every replica holding the user; the rest to one connection's.
    const toUser = message.kind === 'deliver' || message.kind === 'state';
    if (this.route && toUser) {
      const [reached, sent] = await this.route(
        userIds.length,
        ...userIds.map((userId) => this.keys.userConnections(userId)),
        this.keys.replicaChannel(''),
        JSON.stringify(message),
        ...userIds.map((userId) => JSON.stringify(userId)),
      );
      this.metrics.busMessages.inc({ direction: 'out' }, sent);
      return reached;
    }
    // A cluster: read presence, then publish to each replica's shard.
    const byReplica = new Map<string, string[]>();
    const add = (replica: string, userId: string) => {
      const users = byReplica.get(replica);
      if (!users) byReplica.set(replica, [userId]);
      else if (users.at(-1) !== userId) users.push(userId);
    };
    if (toUser) {
      (await this.presence.replicasOf(userIds)).forEach((replicas, i) => {
        for (const replica of replicas) add(replica, userIds[i]!);
      });
    } else {
      // An SSE heartbeat answer or a disconnect is for one connection: only its replica is told.
      const replicas = await Promise.all(
        userIds.map((userId) => this.presence.replicaOfConnection(userId, message.connectionId)),
      );
      replicas.forEach((replica, i) => replica !== null && add(replica, userIds[i]!));
    }
    if (byReplica.size === 0) return 0;
    // Serialized once; each replica's message is it with the users held there in front.
    const body = JSON.stringify(message).slice(1);
    // Auto-pipelined: what many requests publish in the same tick goes in one write (per node).
    const reached = new Set<string>();
    await Promise.all(
      [...byReplica].map(async ([replica, users]) => {
        const raw = `{"userIds":${JSON.stringify(users)},${body}`;
        if ((await publishOn(this.redis, this.keys.replicaChannel(replica), raw)) > 0)
          for (const userId of users) reached.add(userId);
      }),
    );
    this.metrics.busMessages.inc({ direction: 'out' }, byReplica.size);
    return reached.size;
  }

  async publishBroadcast(message: BroadcastMessage): Promise<void> {
    await publishOn(this.redis, this.broadcast, JSON.stringify(message));
    this.metrics.busMessages.inc({ direction: 'out' });
  }

  private dispatch(channel: string, raw: string): void {
    let message: BusMessage;
    try {
      message = JSON.parse(raw) as BusMessage;
    } catch {
      this.logger.error({ message: 'unparseable bus message', channel });
      return;
    }
    if (message.kind === 'probe') {
      this.probes.get(message.probeId)?.(channel);
      return;
    }
    this.metrics.busMessages.inc({ direction: 'in' });
    if (!this.handlers) return;
    // From the subscriber's drop until its return is confirmed, a notification is left to the catch-up the
    // return starts (BusCatchUp): it is in the record already, and the catch-up sends what the bus missed and
    // this together in seq order, where sent now it would go ahead of older ones the bus missed.
    if (!this.receiving && (message.kind === 'deliver' || message.kind === 'broadcast')) return;
    if (channel === this.broadcast && message.kind === 'broadcast') {
      this.handlers.broadcast(message);
      return;
    }
    if (channel !== this.channel || message.kind === 'broadcast') {
      this.logger.warn({ message: 'bus message on unexpected channel', channel, kind: message.kind });
      return;
    }
    for (const userId of message.userIds) {
      if (message.kind === 'deliver') this.handlers.deliver(userId, message);
      else if (message.kind === 'alive') this.handlers.alive(userId, message);
      else if (message.kind === 'state') this.handlers.state(userId, message);
      else this.handlers.disconnect(userId, message);
    }
  }
}
