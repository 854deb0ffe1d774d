import { Inject, Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';

/** Close codes shown as themselves; any other (clients may send 3000-4999) is `other`, so labels stay few. */
const KNOWN_CLOSE_CODES = new Set([1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013]);

export type DeliveryOutcome = 'sent' | 'acked' | 'expired' | 'failed';
export type AudienceKind = 'users' | 'topic' | 'all';

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

  readonly connectionsOpened: Counter;
  readonly connectionsClosed: Counter<'code'>;
  readonly notificationsPublished: Counter<'audience'>;
  readonly deliveries: Counter<'outcome'>;
  readonly redeliveries: Counter;
  readonly publishToAck: Histogram;
  readonly sendToAck: Histogram;
  readonly replaySize: Histogram;
  readonly jobs: Counter<'queue' | 'outcome'>;
  readonly busMessages: Counter<'direction'>;
  readonly rateLimitedFrames: Counter;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly upgradesRefused: Counter<'status'>;

  constructor(@Inject(HERALD_CONFIG) config: HeraldConfig) {
    this.registry.setDefaultLabels({ replica: config.replicaId });
    collectDefaultMetrics({ register: this.registry, prefix: 'herald_' });
    const registers = [this.registry];
    this.connectionsOpened = new Counter({
      name: 'herald_connections_opened_total',
      help: 'WebSocket connections accepted (after authentication).',
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'herald_connections_closed_total',
      help: 'WebSocket connections closed, by close code (`other` for application codes).',
      labelNames: ['code'],
      registers,
    });
    this.notificationsPublished = new Counter({
      name: 'herald_notifications_published_total',
      help: 'Notifications stored by POST /v1/notifications (idempotent replays not counted), by audience kind.',
      labelNames: ['audience'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'herald_deliveries_total',
      help: 'Delivery state changes made by this replica: sent (each send, first or again), acked, expired, failed.',
      labelNames: ['outcome'],
      registers,
    });
    this.redeliveries = new Counter({
      name: 'herald_redeliveries_total',
      help: 'Sends of a delivery after its first (ack timeout passed, or replayed after an unacked send).',
      registers,
    });
    this.publishToAck = new Histogram({
      name: 'herald_publish_to_ack_seconds',
      help: 'Time from publish (stored) to the ack being recorded, including any time the user was offline.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.sendToAck = new Histogram({
      name: 'herald_send_to_ack_seconds',
      help: 'Time from the latest send of a delivery to its ack: the client round trip, without offline time.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.replaySize = new Histogram({
      name: 'herald_replay_size',
      help: 'Notifications replayed to a connection when it opened.',
      buckets: [0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000],
      registers,
    });
    this.jobs = new Counter({
      name: 'herald_jobs_total',
      help: 'BullMQ jobs processed by this replica, by queue and outcome (completed, failed).',
      labelNames: ['queue', 'outcome'],
      registers,
    });
    this.busMessages = new Counter({
      name: 'herald_bus_messages_total',
      help: 'Redis pub/sub messages between replicas: out (published) and in (received).',
      labelNames: ['direction'],
      registers,
    });
    this.rateLimitedFrames = new Counter({
      name: 'herald_rate_limited_frames_total',
      help: 'Client commands answered RATE_LIMITED (too many queued on one connection).',
      registers,
    });
    this.upgradesRefused = new Counter({
      name: 'herald_upgrades_refused_total',
      help: 'WebSocket upgrades refused before the upgrade, by HTTP status (401 token, 403 origin, 503 draining).',
      labelNames: ['status'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'herald_http_requests_total',
      help: 'REST requests answered, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
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

  delivery(outcome: DeliveryOutcome, count = 1): void {
    if (count > 0) this.deliveries.inc({ outcome }, count);
  }
}
