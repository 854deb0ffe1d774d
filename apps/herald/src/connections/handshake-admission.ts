import { Inject, Injectable, Logger } from '@nestjs/common';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { queueAgeMs } from './queue-age';

/** A shed client is never asked back sooner than this, nor later than the SDK's largest backoff. */
export const SHED_MIN_DELAY_MS = 500;
export const SHED_MAX_DELAY_MS = 30_000;
/** Shedding is logged at most this often, with the count since the last line. */
const SHED_LOG_EVERY_MS = 5000;
/** Weight of the newest setup in the running mean of setup times. */
const LATENCY_WEIGHT = 0.05;
/** The mean setup time before any was measured. */
const INITIAL_SETUP_MS = 50;

/** One admitted handshake: `done` ends it (the first call counts; later ones do nothing). */
export interface Admitted {
  readonly done: (this: void) => void;
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
  private shedSinceLog = 0;
  private lastShedLog = 0;
  private tooOldSinceLog = 0;
  private lastTooOldLog = 0;
  private meanSetupMs = INITIAL_SETUP_MS;
  /** The last slot given to a shed client (epoch ms). */
  private lastSlot = 0;
  /** The jitter's random source (tests pin it). */
  random: () => number = Math.random;

  constructor(
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
  ) {
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
   * A request that waited longer than HERALD_MAX_QUEUE_AGE_MS before this replica read it (its
   * `X-Request-Start`): counted and logged, and answered when to come back (ms from now), to be turned away
   * as a shed one is, before any work. Its client has most likely given up (the SDK waits 10 s for
   * `welcome`); one still waiting comes back in a slot. Null when it is younger, carries no readable stamp,
   * or the bound is off.
   */
  tooOld(transport: 'websocket' | 'sse', requestStart: string | string[] | undefined): number | null {
    const bound = this.config.maxQueueAgeMs;
    if (bound === 0) return null;
    const age = queueAgeMs(requestStart, Date.now());
    if (age === undefined || age <= bound) return null;
    this.metrics.handshakesTooOld.inc({ transport });
    const now = Date.now();
    this.tooOldSinceLog += 1;
    if (now - this.lastTooOldLog >= SHED_LOG_EVERY_MS) {
      this.logger.warn({
        message: 'turning away handshakes that queued past HERALD_MAX_QUEUE_AGE_MS',
        turnedAway: this.tooOldSinceLog,
        boundMs: bound,
        ageMs: Math.round(age),
      });
      this.lastTooOldLog = now;
      this.tooOldSinceLog = 0;
    }
    return this.nextSlot(now);
  }

  /** A handshake shed: counts it, and answers when to come back (ms from now). */
  shed(transport: 'websocket' | 'sse'): number {
    this.metrics.handshakesShed.inc({ transport });
    const now = Date.now();
    this.shedSinceLog += 1;
    if (now - this.lastShedLog >= SHED_LOG_EVERY_MS) {
      this.logger.warn({
        message: 'shedding handshakes: HERALD_MAX_PENDING_HANDSHAKES in progress',
        shed: this.shedSinceLog,
        limit: this.config.maxPendingHandshakes,
        meanSetupMs: Math.round(this.meanSetupMs),
      });
      this.lastShedLog = now;
      this.shedSinceLog = 0;
    }
    return this.nextSlot(now);
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
