import { Inject, Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';

/** Close codes shown as themselves; any other (clients may send 3000-4999) is `other`, so labels stay few. */
const KNOWN_CLOSE_CODES = new Set([1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013]);

export type DeliveryOutcome = 'sent' | 'acked' | 'expired' | 'failed';
export type AudienceKind = 'users' | 'topic' | 'all';
/** Where an ack is written (ADR 0007): a stream's cursors and journal, or deliveries rows. */
export type AckRecord = 'stream' | 'rows';
/** Why a trouble row (a deliveries row for a broadcast's recipient) was made: unacked at a send's or a replay's check. */
export type TroubleReason = 'broadcast_unacked' | 'replay_unacked';

/**
 * Every Prometheus metric of a replica, in one registry served at /metrics.
 * Labels are bounded sets (outcome, audience kind, close code, queue): never
 * a user id, notification id or publisher key. Every series carries the
 * `replica` label: sum counters over it for the cluster (but herald_queue_jobs
 * reads the shared queues, so every replica reports the same: take the max).
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly connectionsOpened = this.counter(
    'herald_connections_opened_total',
    'WebSocket connections accepted (after authentication).',
  );
  readonly connectionsClosed = this.counter(
    'herald_connections_closed_total',
    'WebSocket connections closed, by close code (`other` for application codes).',
    ['code'],
  );
  readonly upgradesRefused = this.counter(
    'herald_upgrades_refused_total',
    'WebSocket upgrades refused before the upgrade, by HTTP status (401 token, 403 origin, 503 draining or at HERALD_MAX_CONNECTIONS).',
    ['status'],
  );
  readonly notificationsPublished = this.counter(
    'herald_notifications_published_total',
    'Notifications stored by POST /v1/notifications (idempotent replays not counted), by audience kind.',
    ['audience'],
  );
  readonly deliveries = this.counter(
    'herald_deliveries_total',
    'Delivery state changes made by this replica: sent (each send, first or again), acked, expired, failed.',
    ['outcome'],
  );
  readonly redeliveries = this.counter(
    'herald_redeliveries_total',
    'Sends of a delivery after its first (ack timeout passed, or replayed after an unacked send).',
  );
  readonly publishToAck = this.histogram(
    'herald_publish_to_ack_seconds',
    'Time from publish (stored) to the ack being recorded, including any time the user was offline.',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
  );
  readonly sendToAck = this.histogram(
    'herald_send_to_ack_seconds',
    'Time from the latest send of a delivery to its ack: the client round trip, without offline time.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly replaySize = this.histogram(
    'herald_replay_size',
    'Notifications replayed to a connection when it opened.',
    [0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000],
  );
  readonly jobs = this.counter(
    'herald_jobs_total',
    'BullMQ jobs processed by this replica, by queue and outcome (completed, failed).',
    ['queue', 'outcome'],
  );
  readonly busMessages = this.counter(
    'herald_bus_messages_total',
    'Redis pub/sub messages between replicas: out (published: one per replica holding recipients of a per-user publish) and in (received).',
    ['direction'],
  );
  readonly rateLimitedFrames = this.counter(
    'herald_rate_limited_frames_total',
    'Client frames answered RATE_LIMITED or that closed their connection (over the frame rate, or too many queued).',
  );
  readonly handshakesShed = this.counter(
    'herald_handshakes_shed_total',
    'Handshakes shed because HERALD_MAX_PENDING_HANDSHAKES were being set up: a WebSocket closed with 1013 `retry after <n> ms`, an SSE stream answered 503 with Retry-After.',
    ['transport'],
  );
  readonly handshakesTooOld = this.counter(
    'herald_handshakes_too_old_total',
    'Handshakes turned away before any work (as shed ones: 1013 or 503 with a delay) because they waited longer than HERALD_MAX_QUEUE_AGE_MS between the proxy and the replica (X-Request-Start).',
    ['transport'],
  );
  readonly connectionSetup = this.histogram(
    'herald_connection_setup_seconds',
    'Time to set a connection up: from the upgrade or stream request to the first replay batch sent (or the setup failing).',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly connectionsRefused = this.counter(
    'herald_connections_refused_total',
    'Connections closed right after opening because a limit was reached (user-limit: HERALD_MAX_CONNECTIONS_PER_USER).',
    ['reason'],
  );
  readonly connectionsCutOff = this.counter(
    'herald_connections_cut_off_total',
    'Connections the server terminated without a close handshake: slow-consumer (send buffer over HERALD_MAX_BUFFERED_BYTES) or dead-peer (no pong).',
    ['reason'],
  );
  readonly publisherRateLimited = this.counter(
    'herald_publisher_rate_limited_total',
    "Publishes refused 429 by a publisher key's limits, by the limit that refused: notifications (HERALD_PUBLISH_RATE / _BURST) or recipients (HERALD_PUBLISH_RECIPIENTS_PER_MINUTE).",
    ['reason'],
  );
  readonly publisherLimiterFailOpen = this.counter(
    'herald_publisher_limiter_fail_open_total',
    "Publish batches let through unchecked because the limiter's Redis answered late (timeout, over 50 ms) or not at all (error).",
    ['reason'],
  );
  readonly tickets = this.counter(
    'herald_tickets_total',
    'Connection tickets by audience (user, admin) and outcome: minted, mint-limited, used, refused-<reason> (malformed, unknown: used, expired or never minted, audience, origin, expired-credential).',
    ['audience', 'outcome'],
  );
  readonly streamGaps = this.counter(
    'herald_stream_gaps_total',
    'Times this replica found itself behind a broadcast stream (an offset skipped on the bus, or a head ahead of it) and read the missing notifications from PostgreSQL (ADR 0007).',
  );
  readonly streamGapNotifications = this.counter(
    'herald_stream_gap_notifications_total',
    'Broadcast notifications this replica read from PostgreSQL because the bus did not bring them in order (ADR 0007).',
  );
  readonly busReturns = this.counter(
    'herald_bus_returns_total',
    "Times this replica's Redis subscriber came back after it dropped, its subscriptions confirmed; each return starts a catch-up from PostgreSQL (BusCatchUp).",
  );
  readonly redisRedirections = this.counter(
    'herald_redis_redirections_total',
    "MOVED and ASK answers this replica's Redis Cluster command client followed (a slot moved or moving: a reshard or a failover); always 0 on one Redis.",
    ['kind'],
  );
  /** Channels each pub/sub subscriber of this replica holds (Subscriber), by its name. */
  readonly redisSubscriptions = new Map<string, () => number>();
  readonly redisSubscriptionsGauge = this.gauge(
    'herald_redis_subscriptions',
    "Pub/sub channels this replica's subscribers hold (sharded on a cluster): a fixed few, however many users it holds (ADR 0019).",
    ['subscriber'],
    (gauge) => {
      for (const [subscriber, count] of this.redisSubscriptions) gauge.set({ subscriber }, count());
    },
  );
  readonly busCatchUpNotifications = this.counter(
    'herald_bus_catch_up_notifications_total',
    "Notifications sent to this replica's connections by the catch-up after a return of the subscriber: what the bus did not bring while it was away (direct rows and broadcast offsets).",
  );
  readonly ackFlushSize = this.histogram(
    'herald_ack_flush_size',
    'Acks written per statement of an ack flush, by record: stream (cursors and journal) or rows (deliveries rows). An ack this replica did not send from a stream is asked of the rows first, so it can count in both.',
    [1, 2, 5, 10, 25, 50, 100, 250, 400, 500],
    ['record'],
  );
  readonly ackWriteSeconds = this.histogram(
    'herald_ack_write_seconds',
    'Seconds one statement of an ack flush took to commit, by record (stream, rows), deadlock retries included.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    ['record'],
  );
  readonly ackFlushSeconds = this.histogram(
    'herald_ack_flush_seconds',
    "Seconds from the arrival of a flush's oldest ack to the commit of the flush's last statement: the gathering window, any wait behind flushes in flight, and the writes. One observation per flush.",
    [0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly troubleRows = this.counter(
    'herald_trouble_rows_total',
    "Deliveries rows made for a broadcast's recipient who had not acked at the check (ADR 0007), by reason: broadcast_unacked (a live send's check), replay_unacked (a replay's check).",
    ['reason'],
  );
  readonly sweepSeconds = this.histogram(
    'herald_sweep_duration_seconds',
    'Seconds one sweep run took on this replica, whether it completed or failed (herald_jobs_total{queue="sweep"} counts which).',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  );
  readonly retentionRunSeconds = this.histogram(
    'herald_retention_run_duration_seconds',
    'Seconds one retention run took on this replica (partitions made and dropped, history, idempotency keys, users).',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  );
  readonly inboxChanges = this.counter(
    'herald_inbox_changes_total',
    'Inbox items whose state a user changed, by action (seen, unseen, read, unread, archive, unarchive), and "mark all read" requests (readAll).',
    ['action'],
  );
  readonly partitionsDropped = this.counter(
    'herald_retention_partitions_dropped_total',
    'Partitions of the record (a time window of notifications with their delivery rows and ack journal) dropped by retention.',
  );
  readonly retentionRemoved = this.counter(
    'herald_retention_rows_removed_total',
    'Rows retention deleted one by one: history (notifications from before partitioning), idempotency_keys, users.',
    ['what'],
  );
  readonly webhookAttempts = this.counter(
    'herald_webhook_attempts_total',
    'Webhook requests made by this replica, by event type and outcome: ok (2xx), http (another status), redirect (not followed), refused (a refused address), network, timeout.',
    ['type', 'outcome'],
  );
  readonly webhookAttemptSeconds = this.histogram(
    'herald_webhook_attempt_duration_seconds',
    'Seconds from connect to answer of each webhook request made by this replica (refused ones included).',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly webhookMessages = this.counter(
    'herald_webhook_messages_total',
    'Webhook messages by what became of them on this replica: made (by the batcher), delivered, failed (given up after HERALD_WEBHOOK_RETRY_HOURS).',
    ['result'],
  );
  readonly webhookEndpointsDisabled = this.counter(
    'herald_webhook_endpoints_disabled_total',
    'Endpoints disabled by this replica after failing for HERALD_WEBHOOK_DISABLE_AFTER_HOURS.',
  );
  readonly httpRequests = this.counter(
    'herald_http_requests_total',
    'REST requests answered, by method, route pattern and status.',
    ['method', 'route', 'status'],
  );

  constructor(@Inject(HERALD_CONFIG) config: HeraldConfig) {
    this.registry.setDefaultLabels({ replica: config.replicaId });
    collectDefaultMetrics({ register: this.registry, prefix: 'herald_' });
  }

  readonly redeliveryCheckOutcomes = this.counter(
    'herald_redelivery_checks_total',
    "Checks run by this replica's redelivery timers, by outcome: resent, parked (user offline), failed (last attempt), postponed (no replica took the resend), stale (acked or moved on since), handed_off (a broadcast recipient unacked at its check, now a row).",
    ['outcome'],
  );

  private counter<L extends string = never>(name: string, help: string, labelNames: L[] = []): Counter<L> {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  private histogram<L extends string = never>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: L[] = [],
  ): Histogram<L> {
    return new Histogram<L>({ name, help, buckets, labelNames, registers: [this.registry] });
  }

  /** A gauge read when Prometheus scrapes. */
  gauge<L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    collect: (gauge: Gauge<L>) => Promise<void> | void,
  ): Gauge<L> {
    return new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        await collect(this);
      },
    });
  }

  connectionClosed(code: number): void {
    this.connectionsClosed.inc({ code: KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other' });
  }

  /** Counts sends: every one is `sent`; those after the first are also redeliveries. */
  sent(attempts: number[]): void {
    if (attempts.length === 0) return;
    this.deliveries.inc({ outcome: 'sent' }, attempts.length);
    const again = attempts.filter((a) => a > 1).length;
    if (again > 0) this.redeliveries.inc(again);
  }

  /** The outcomes of a batch of redelivery checks (RedeliveryScheduler). */
  redeliveryChecks(outcomes: Partial<Record<string, number>>): void {
    for (const [outcome, n] of Object.entries(outcomes)) {
      if (n) this.redeliveryCheckOutcomes.inc({ outcome: outcome === 'handedOff' ? 'handed_off' : outcome }, n);
    }
  }

  /** A gap in a broadcast stream, filled with `fetched` notifications read from the record. */
  streamGapFetched(fetched: number): void {
    this.streamGaps.inc();
    if (fetched > 0) this.streamGapNotifications.inc(fetched);
  }

  /** One statement of an ack flush: how many acks it wrote, where, and how long it took. */
  ackWritten(record: AckRecord, acks: number, seconds: number): void {
    this.ackFlushSize.observe({ record }, acks);
    this.ackWriteSeconds.observe({ record }, seconds);
  }

  /** An ack flush committed, `seconds` after its oldest ack arrived. */
  ackFlushed(seconds: number): void {
    this.ackFlushSeconds.observe(seconds);
  }

  troubleRowsMade(reason: TroubleReason, count: number): void {
    if (count > 0) this.troubleRows.inc({ reason }, count);
  }

  /** Runs `work` and observes how long it took in `histogram`, whether it resolved or threw. */
  async timed<T>(histogram: Histogram, work: () => Promise<T>): Promise<T> {
    const end = histogram.startTimer();
    try {
      return await work();
    } finally {
      end();
    }
  }

  delivery(outcome: DeliveryOutcome, count = 1): void {
    if (count > 0) this.deliveries.inc({ outcome }, count);
  }

  /** Counts a job's outcome for herald_jobs_total, passing its result or error through. */
  async countJob<T>(queue: string, work: Promise<T>): Promise<T> {
    try {
      const result = await work;
      this.jobs.inc({ queue, outcome: 'completed' });
      return result;
    } catch (error) {
      this.jobs.inc({ queue, outcome: 'failed' });
      throw error;
    }
  }
}
