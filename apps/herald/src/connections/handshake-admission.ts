import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { compileProxyTrust, ProxyTrust } from '../common/client-address';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { AgeFloor, queueAgeMs } from './queue-age';

/** A shed client is never asked back sooner than this, nor later than the SDK's largest backoff. */
export const SHED_MIN_DELAY_MS = 500;
export const SHED_MAX_DELAY_MS = 30_000;
/** Shedding (and turning away) is logged at most this often, with the count since the last line. */
const SHED_LOG_EVERY_MS = 5000;

/** A warning logged at most once per SHED_LOG_EVERY_MS, with how many times it happened since its last line. */
class ThrottledWarning {
  private since = 0;
  private last = 0;

  constructor(
    private readonly logger: Logger,
    private readonly line: (count: number) => Record<string, unknown>,
  ) {}

  note(now: number): void {
    this.since += 1;
    if (now - this.last < SHED_LOG_EVERY_MS) return;
    this.logger.warn(this.line(this.since));
    this.last = now;
    this.since = 0;
  }
}
/** A replica that shed a handshake this recently is in a storm: old stamps then mean a queue, not skew. */
const BUSY_AFTER_SHED_MS = 10_000;
/** Weight of the newest setup in the running mean of setup times. */
const LATENCY_WEIGHT = 0.05;
/** The mean setup time before any was measured. */
const INITIAL_SETUP_MS = 50;

/** One admitted handshake: `done` ends it (the first call counts; later ones do nothing). */
export interface Admitted {
  readonly done: (this: void) => void;
}

/** A handshake turned away before any work: shed, or queued too long. Come back after this delay. */
export interface TurnedAway {
  readonly retryAfterMs: number;
}

/**
 * HERALD_MAX_PENDING_HANDSHAKES: how many connections this replica sets up at once (from the upgrade request
 * or stream request to the first replay batch sent). One more is shed with a delay to come back after
 * (`retryAfterMs`), so a reconnect storm is worked through at the rate the replica sets connections up
 * instead of queuing in front of PostgreSQL and Redis, where every setup would wait for all the others.
 *
 * The delays are slots of a virtual queue: each shed client is given the next free one, slots spaced by the
 * replica's setup rate (Little's law: the bound divided by the mean setup time), so the clients told to come
 * back arrive at about the rate they can be taken, not together.
 */
@Injectable()
export class HandshakeAdmission {
  private readonly logger = new Logger(HandshakeAdmission.name);
  private pending = 0;
  private lastShedAt = -Infinity;
  private meanSetupMs = INITIAL_SETUP_MS;
  /** Whose `X-Request-Start` is believed: HERALD_TRUSTED_PROXIES, as for `X-Forwarded-For`. */
  private readonly proxyTrust: ProxyTrust;
  private readonly ageFloor = new AgeFloor();
  private readonly shedWarning = new ThrottledWarning(this.logger, (shed) => ({
    message: 'shedding handshakes: HERALD_MAX_PENDING_HANDSHAKES in progress',
    shed,
    limit: this.config.maxPendingHandshakes,
    meanSetupMs: Math.round(this.meanSetupMs),
  }));
  private readonly tooOldWarning = new ThrottledWarning(this.logger, (turnedAway) => ({
    message: 'turning away handshakes that queued past HERALD_MAX_QUEUE_AGE_MS',
    turnedAway,
    boundMs: this.config.maxQueueAgeMs,
  }));
  private readonly skewWarning = new ThrottledWarning(this.logger, (ignored) => ({
    message:
      'X-Request-Start ages stay above HERALD_MAX_QUEUE_AGE_MS: the proxy clock is behind this replica, the bound is not applied',
    ignored,
    boundMs: this.config.maxQueueAgeMs,
  }));
  /** The last slot given to a shed client (epoch ms). */
  private lastSlot = 0;
  /** The jitter's random source (tests pin it). */
  random: () => number = Math.random;

  constructor(
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
  ) {
    this.proxyTrust = compileProxyTrust(config.trustedProxies);
    metrics.gauge(
      'herald_handshakes_in_progress',
      'Connections being set up on this replica now (bounded by HERALD_MAX_PENDING_HANDSHAKES).',
      [],
      (gauge) => gauge.set(this.pending),
    );
  }

  get inProgress(): number {
    return this.pending;
  }

  /**
   * A handshake arrives: turned away with a delay when it queued too long (`tooOld`) or the replica is at
   * its bound (`shed`), else admitted.
   */
  admit(transport: 'websocket' | 'sse', request: IncomingMessage): Admitted | TurnedAway {
    const tooOld = this.tooOld(transport, request);
    if (tooOld !== null) return { retryAfterMs: tooOld };
    return this.enter() ?? { retryAfterMs: this.shed(transport) };
  }

  /** A handshake starts: admitted, or null when the replica is at its bound (shed it: `shed`). */
  enter(): Admitted | null {
    if (this.pending >= this.config.maxPendingHandshakes) return null;
    this.pending += 1;
    const started = performance.now();
    let open = true;
    return {
      done: () => {
        if (!open) return;
        open = false;
        this.pending -= 1;
        const ms = performance.now() - started;
        this.meanSetupMs += (ms - this.meanSetupMs) * LATENCY_WEIGHT;
        this.metrics.connectionSetup.observe(ms / 1000);
      },
    };
  }

  /**
   * A request that waited longer than HERALD_MAX_QUEUE_AGE_MS before this replica read it (the
   * `X-Request-Start` of a trusted proxy): counted and logged, and answered when to come back (ms from now),
   * to be turned away as a shed one is, before any work. Its client has most likely given up (the SDK waits
   * 10 s for `welcome`); one still waiting comes back in a slot. Null when it is younger, carries no stamp
   * this replica believes, or the bound is off; also while even the youngest stamp of the last 30 to 60 s
   * was past the bound and the replica is not at its bound of setups (nor shed one in the last 10 s): a
   * queue that old on a replica that keeps up is a proxy clock behind this one, not a queue.
   */
  tooOld(transport: 'websocket' | 'sse', request: IncomingMessage): number | null {
    const bound = this.config.maxQueueAgeMs;
    if (bound === 0 || !this.proxyTrust(request.socket.remoteAddress ?? '', 0)) return null;
    const now = Date.now();
    const age = queueAgeMs(request.headers['x-request-start'], now);
    if (age === undefined) return null;
    const floor = this.ageFloor.observe(age, now);
    if (age <= bound) return null;
    if (floor > bound && !this.busy(now)) {
      this.skewWarning.note(now);
      return null;
    }
    this.metrics.handshakesTooOld.inc({ transport });
    this.tooOldWarning.note(now);
    return this.nextSlot(now);
  }

  /** A handshake shed: counts it, and answers when to come back (ms from now). */
  shed(transport: 'websocket' | 'sse'): number {
    this.metrics.handshakesShed.inc({ transport });
    const now = Date.now();
    this.lastShedAt = now;
    this.shedWarning.note(now);
    return this.nextSlot(now);
  }

  /** At its bound of setups, or shedding within the last BUSY_AFTER_SHED_MS: a storm, not a quiet replica. */
  private busy(now: number): boolean {
    return this.pending >= this.config.maxPendingHandshakes || now - this.lastShedAt < BUSY_AFTER_SHED_MS;
  }

  /** The next free slot of the virtual queue shed clients come back in (ms from now). */
  private nextSlot(now: number): number {
    // Setups per ms at the bound; every slot one setup time apart.
    const spacingMs = Math.max(this.meanSetupMs, 1) / this.config.maxPendingHandshakes;
    this.lastSlot = Math.min(Math.max(this.lastSlot, now + SHED_MIN_DELAY_MS) + spacingMs, now + SHED_MAX_DELAY_MS);
    // A little jitter, so clients given neighbouring slots do not come back in the same millisecond.
    const delay = this.lastSlot - now + this.random() * spacingMs * 4;
    return Math.round(Math.min(delay, SHED_MAX_DELAY_MS));
  }
}
