import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { CloseCode, LimitCloseReason, PROTOCOL_VERSION, type ProtocolFeature } from '@herald/protocol';
import { randomUUID } from 'node:crypto';
import { ClsService } from 'nestjs-cls';
import type { HeraldClsStore } from '../common/logging';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { retryOnDeadlock } from '../record/sql';
import type { OpenForReplay } from '../record/replay.repository';
import { UserRepository } from '../record/user.repository';
import { Batcher } from '../common/batcher';
import { Connection, ConnectionLimits } from './connection';
import { ConnectionPresence } from './connection-presence';
import { ConnectionRegistry } from './connection-registry';
import { Replay } from '../delivery/replay';
import { LiveEvents } from '../delivery/live-events';
import { ClientTransport } from './transport';
import type { Admitted } from './handshake-admission';

export interface ConnectionMeta {
  userId: string;
  tokenExpiresAt: number;
  remoteAddress: string;
  userAgent: string;
  /**
   * SSE `Last-Event-ID`: the client holds every notification up to this seq,
   * so the replay sends those after it (and any never sent); the earlier
   * unacked ones come back on the redelivery schedule if no ack arrives.
   */
  resumeAfterSeq?: number;
  /** The features the client asked for in its connect request (`?features=`); only `inbox` is asked for. */
  features?: ReadonlySet<string>;
  /** The handshake's place under HERALD_MAX_PENDING_HANDSHAKES, given back once the first replay batch is sent. */
  admitted?: Admitted;
}

/**
 * The life of a connection on this replica: open (register, presence,
 * arrival, welcome, replay), heartbeats, close, and shutdown. Its frames
 * in are ConnectionCommands'.
 */
@Injectable()
export class ConnectionService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(ConnectionService.name);
  private readonly inFlight = new Set<Promise<unknown>>();
  private pingTimer: NodeJS.Timeout | undefined;
  private presenceTimer: NodeJS.Timeout | undefined;
  private shuttingDown = false;
  private readonly setups = new WeakMap<Connection, Promise<void>>();
  private sharedLimits: ConnectionLimits | undefined;
  /**
   * The users of connections set up together, recorded as seen and what each has to replay read, in one
   * statement (`UserRepository.arrive`).
   */
  private readonly arrivals = new Batcher<string, OpenForReplay>(
    (userIds) => retryOnDeadlock(() => this.users.arrive(userIds)),
    { windowMs: 0, maxBatch: 500, maxInFlight: 1 },
  );

  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly presence: ConnectionPresence,
    private readonly users: UserRepository,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
    private readonly live: LiveEvents,
    private readonly replay: Replay,
    private readonly cls: ClsService<HeraldClsStore>,
  ) {
    metrics.gauge('herald_connections', 'WebSocket connections open on this replica now.', [], (gauge) =>
      gauge.set(this.registry.size),
    );
  }

  /** One object for every connection: the limits are the same for all. */
  private get limits(): ConnectionLimits {
    return (this.sharedLimits ??= {
      maxBufferedBytes: this.config.maxBufferedBytes,
      framesPerSecond: this.config.clientFramesPerSecond,
      framesBurst: this.config.clientFramesBurst,
      ackThroughWindow: this.config.ackThroughWindow,
    });
  }

  async onModuleInit(): Promise<void> {
    await this.presence.reset();
    this.pingTimer = setInterval(() => this.pingAll(), this.config.heartbeatMs);
    this.presenceTimer = setInterval(() => this.track(this.presence.beat()), this.config.presenceHeartbeatMs);
    this.track(this.presence.beat());
  }

  /**
   * Registers a new connection at once (so no frame it sends is lost) and
   * starts its setup: presence, arrival (seen, and what it has open), welcome, replay.
   */
  open(transport: ClientTransport, meta: ConnectionMeta): Connection {
    const connection = new Connection(
      {
        id: randomUUID(),
        userId: meta.userId,
        connectedAt: Date.now(),
        remoteAddress: meta.remoteAddress,
        userAgent: meta.userAgent,
        tokenExpiresAt: meta.tokenExpiresAt,
        ...(meta.features?.has('inbox') && this.config.inboxRetentionMs > 0 ? { inbox: true as const } : {}),
      },
      transport,
      this.limits,
    );
    if (this.shuttingDown) {
      meta.admitted?.done();
      connection.close(CloseCode.GoingAway, 'server shutting down');
      return connection;
    }
    this.registry.add(connection);
    this.metrics.connectionsOpened.inc();
    const setup = this.inContextOf(connection, () => this.setup(connection, meta.resumeAfterSeq, meta.admitted));
    this.setups.set(connection, setup);
    // Forgotten once done (closed() then has nothing to wait for): an open connection keeps no promise.
    void setup.then(() => this.setups.delete(connection));
    this.track(setup);
    return connection;
  }

  /** Upgrades and streams accepted so far but still being decided (a ticket is being consumed). */
  private deciding = 0;

  /** HERALD_MAX_CONNECTIONS: checked before an upgrade or a stream is accepted, counting those being decided. */
  get atCapacity(): boolean {
    return this.registry.size + this.deciding >= this.config.maxConnections;
  }

  /**
   * Holds a place under HERALD_MAX_CONNECTIONS while `decision` runs (a ticket consumed in Redis), so
   * upgrades decided at once cannot all pass the cap together. The place is given back when it settles.
   */
  holdPlace<T>(decision: Promise<T>): Promise<T> {
    this.deciding += 1;
    return decision.finally(() => {
      this.deciding -= 1;
    });
  }

  /**
   * Never rejects. A failure (Redis or PostgreSQL unreachable) closes the connection with 1013 Try Again
   * Later, and the client retries with backoff (not a 503 before the upgrade: ADR 0003). The presence entry
   * it writes is ConnectionPresence's to remove.
   */
  private async setup(
    connection: Connection,
    resumeAfterSeq: number | undefined,
    admitted: Admitted | undefined,
  ): Promise<void> {
    try {
      // Presence before the replay's read: the bus routes by presence (ADR 0019), so a publish committed
      // after the read finds this connection, and one that did not find it was committed before the read.
      const entry = await this.presence.admit(connection);
      if (!entry) {
        this.metrics.connectionsRefused.inc({ reason: 'user-limit' });
        this.logger.log({
          message: 'connection refused: too many for this user',
          limit: this.config.maxConnectionsPerUser,
        });
        connection.close(
          CloseCode.PolicyViolation,
          `${LimitCloseReason.TooManyConnections} (${this.config.maxConnectionsPerUser})`,
        );
        return;
      }
      // The replay's read starts here (the user is seen in the same statement): what is committed after it
      // reaches the connection live, held until the replay ends.
      connection.replayReading();
      const open = await this.arrivals.add(connection.userId);
      this.live.emit({ type: 'connection.opened', connection: entry });
      connection.send({
        type: 'welcome',
        protocol: PROTOCOL_VERSION,
        connectionId: connection.id,
        userId: connection.userId,
        replicaId: this.config.replicaId,
        heartbeatMs: this.config.heartbeatMs,
        maxMessageBytes: this.config.maxMessageBytes,
        features: featuresOf(connection),
      });
      const replayed = connection.isOpen ? await this.replay.run(connection, resumeAfterSeq, admitted, open) : 0;
      this.metrics.replaySize.observe(replayed);
      this.logger.log({
        message: 'connection opened',
        remoteAddress: connection.info.remoteAddress,
        userAgent: connection.info.userAgent,
        transport: connection.transportKind,
        replayed,
        ...(resumeAfterSeq !== undefined ? { resumeAfterSeq } : {}),
      });
    } catch (error) {
      this.logger.error({
        message: 'connection setup failed',
        error: (error as Error).message,
      });
      connection.close(CloseCode.TryAgainLater, 'setup failed, reconnect');
    } finally {
      admitted?.done();
    }
  }

  /**
   * The socket is gone. Waits for the setup to finish, so that what it
   * acquired (its presence entry) is released exactly once, whatever the
   * order of events.
   */
  closed(connection: Connection, code: number): Promise<void> {
    return this.inContextOf(connection, () => this.close(connection, code));
  }

  private async close(connection: Connection, code: number): Promise<void> {
    // Counted like the opening: only connections that were registered (not those refused while draining).
    if (this.registry.remove(connection)) this.metrics.connectionClosed(code);
    if (connection.cutOff) this.metrics.connectionsCutOff.inc({ reason: connection.cutOff });
    this.logger.log({
      message: 'connection closed',
      remoteAddress: connection.info.remoteAddress,
      code,
      ...(connection.cutOff ? { cutOff: connection.cutOff } : {}),
      durationMs: Date.now() - connection.info.connectedAt,
    });
    await this.setups.get(connection);
    this.setups.delete(connection);
    if (this.shuttingDown) return;
    // After the presence entry is gone, so a snapshot read after the event no longer lists it.
    if (await this.presence.remove(connection)) this.emitClosed(connection, code);
  }

  private emitClosed(connection: Connection, code: number): void {
    this.live.emit({
      type: 'connection.closed',
      connectionId: connection.id,
      userId: connection.userId,
      replicaId: this.config.replicaId,
      code,
    });
  }

  /** WebSocket-level ping; a peer that did not answer the previous one is gone. */
  private pingAll(): void {
    const nowSeconds = Date.now() / 1000;
    for (const connection of this.registry.all()) {
      if (!connection.alive) {
        this.logger.log({ message: 'reaping dead connection', connectionId: connection.id, userId: connection.userId });
        connection.cutOff = 'dead-peer';
        connection.terminate();
        continue;
      }
      if (connection.info.tokenExpiresAt <= nowSeconds) {
        connection.close(CloseCode.PolicyViolation, 'token expired');
        continue;
      }
      connection.ping();
    }
  }

  /**
   * Graceful shutdown: close every client with 1001 so it reconnects
   * elsewhere, wait for in-flight acks and sends to reach PostgreSQL, then
   * forget this replica's presence.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    clearInterval(this.pingTimer);
    clearInterval(this.presenceTimer);
    const connections = [...this.registry.all()];
    for (const connection of connections) connection.close(CloseCode.GoingAway, 'server shutting down');
    // Forgotten at once, not after the drain (ConnectionPresence.forgetAll).
    await this.presence.forgetAll(connections);
    const deadline = Date.now() + this.config.shutdownGraceMs;
    // Frames a client sent before it saw our close frame (acks above all) are still read
    // until its close reply arrives: wait for every socket to finish closing, then for
    // every command those frames started.
    while (this.registry.size > 0 && Date.now() < deadline) await pause(20);
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inFlight]), pause(Math.max(0, deadline - Date.now()))]);
    }
    const unfinished = this.inFlight.size;
    for (const connection of connections) this.emitClosed(connection, CloseCode.GoingAway);
    this.logger.log({ message: 'connections drained', closed: connections.length, unfinished });
  }

  /**
   * Runs a connection's own work (its setup, its close) in a request context (nestjs-cls) naming the
   * connection and its user, so every line it logs carries `connectionId` and `userId`. An SSE stream's
   * context keeps its request's id.
   */
  private inContextOf<T>(connection: Connection, work: () => Promise<T>): Promise<T> {
    return this.cls.run(() => {
      this.cls.set('connectionId', connection.id);
      this.cls.set('userId', connection.userId);
      return work();
    });
  }

  /** Work the shutdown waits for (within HERALD_SHUTDOWN_GRACE_MS): setups, beats, commands. */
  track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    void work.catch(() => undefined).finally(() => this.inFlight.delete(work));
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The optional protocol features a connection's welcome lists: the ack features on WebSockets (SSE acks by
 * POST), and `inbox` on either when the client asked for it.
 */
function featuresOf(connection: Connection): ProtocolFeature[] {
  const inbox: ProtocolFeature[] = connection.info.inbox ? ['inbox'] : [];
  if (connection.transportKind !== 'websocket') return inbox;
  return [...(connection.ackThrough ? (['ackThrough', 'quietAcks'] as const) : (['quietAcks'] as const)), ...inbox];
}
