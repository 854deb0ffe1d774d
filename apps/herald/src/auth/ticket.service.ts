import { Inject, Injectable, Logger } from '@nestjs/common';
import type { TicketResponse } from '@herald/protocol';
import type { RedisClient } from '../redis/redis-client';
import { createHash, randomBytes } from 'node:crypto';
import { Realm } from '../common/bearer';
import { RateLimitedError, UnauthorizedError, UnavailableError } from '../common/errors';
import { HERALD_CONFIG } from '../config/config.module';
import { HeraldConfig } from '../config/config.schema';
import { MetricsService } from '../metrics/metrics.service';
import { REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';

/** Who a ticket is for: an end user (`/ws`, `/v1/stream`) or the admin console (`/admin/api/events`). */
export type TicketAudience = 'user' | 'admin';

/** How long a ticket is worth something, by Redis's clock. */
export const TICKET_TTL_MS = 30_000;
/** 32 random bytes, base64url: 256 bits. */
const TICKET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** What Redis keeps under a ticket's digest. */
interface TicketRecord {
  audience: TicketAudience;
  /** The user id, or `admin`. */
  subject: string;
  /** When the credential it was minted with expires, epoch seconds: a connection ends then, as with it. */
  expiresAt: number;
  /** The `Origin` it was minted from, or null (no Origin: a non-browser client). */
  origin: string | null;
}

/**
 * Counts one mint of a subject in the current minute (KEYS[1]) and answers the count, the ms left in the
 * minute and Redis's clock (seconds, microseconds), from which a ticket's expiry is given.
 */
const COUNT_MINT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], 60000) end
local t = redis.call('TIME')
return {count, redis.call('PTTL', KEYS[1]), tonumber(t[1]), tonumber(t[2])}
`;

type CountMint = (key: string) => Promise<[number, number, number, number]>;

/**
 * One-time connection tickets (ADR 0006): a browser cannot put a header on a WebSocket or an EventSource,
 * so instead of its long-lived token in the URL it sends a ticket that is worth nothing once used. Random
 * (256 bits), stored in Redis under its SHA-256 only, valid 30 s, bound to its subject and to the Origin it
 * was minted from, and consumed with GETDEL by whichever replica sees it first.
 */
@Injectable()
export class TicketService {
  private readonly logger = new Logger(TicketService.name);
  private readonly countMint: CountMint;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    @Inject(HERALD_CONFIG) private readonly config: HeraldConfig,
    private readonly metrics: MetricsService,
  ) {
    redis.defineCommand('heraldCountMint', { numberOfKeys: 1, lua: COUNT_MINT });
    this.countMint = (redis as unknown as { heraldCountMint: CountMint }).heraldCountMint.bind(redis);
  }

  /** A ticket for `subject`, whose credential expires at `expiresAt` (epoch seconds). */
  async mint(
    audience: TicketAudience,
    subject: string,
    expiresAt: number,
    origin: string | undefined,
  ): Promise<TicketResponse> {
    const ticket = randomBytes(32).toString('base64url');
    const record: TicketRecord = { audience, subject, expiresAt, origin: origin ?? null };
    let count: number, windowLeftMs: number, seconds: number, micros: number;
    try {
      [count, windowLeftMs, seconds, micros] = await this.countMint(this.keys.ticketMints(audience, subject));
      if (count <= this.config.ticketMintsPerMinute) {
        await this.redis.set(this.keys.ticket(digest(ticket)), JSON.stringify(record), 'PX', TICKET_TTL_MS);
      }
    } catch (error) {
      this.logger.error({ message: 'ticket not minted', audience, error: (error as Error).message });
      throw new UnavailableError('cannot mint a ticket now (Redis); retry, or connect with Authorization: Bearer');
    }
    if (count > this.config.ticketMintsPerMinute) {
      this.metrics.tickets.inc({ audience, outcome: 'mint-limited' });
      const retry = Math.max(1, Math.ceil(windowLeftMs / 1000));
      throw new RateLimitedError(
        `more than ${this.config.ticketMintsPerMinute} tickets this minute for this ${audience === 'user' ? 'user' : 'console'}; retry in ${retry} s`,
        retry,
      );
    }
    this.metrics.tickets.inc({ audience, outcome: 'minted' });
    const validUntil = Math.min(seconds * 1000 + Math.floor(micros / 1000) + TICKET_TTL_MS, expiresAt * 1000);
    return { ticket, expiresAt: new Date(validUntil).toISOString() };
  }

  /**
   * Consumes a ticket presented for `audience` from `origin`: its subject and credential expiry, or a
   * 401 exactly like a bad token's. Used, expired, forged and foreign-origin tickets are all refused, and
   * the ticket is gone after its first presentation whatever the answer.
   */
  async consume(
    ticket: string,
    audience: TicketAudience,
    origin: string | undefined,
  ): Promise<{ subject: string; expiresAt: number }> {
    if (!TICKET_PATTERN.test(ticket)) return this.refuse(audience, 'malformed');
    let saved: string | null;
    try {
      saved = await this.redis.getdel(this.keys.ticket(digest(ticket)));
    } catch (error) {
      this.logger.error({ message: 'ticket not checked', audience, error: (error as Error).message });
      throw new UnavailableError('cannot check the ticket now (Redis); mint another and retry');
    }
    if (saved === null) return this.refuse(audience, 'unknown');
    const record = JSON.parse(saved) as TicketRecord;
    if (record.audience !== audience) return this.refuse(audience, 'audience');
    // Browsers always send Origin across origins and on WebSocket upgrades; a request without one is a
    // same-origin GET (EventSource, fetch) or not a browser, which no Origin check could stop anyway.
    if (record.origin !== null && origin !== undefined && record.origin !== origin) {
      return this.refuse(audience, 'origin');
    }
    if (record.expiresAt * 1000 <= Date.now()) return this.refuse(audience, 'expired-credential');
    this.metrics.tickets.inc({ audience, outcome: 'used' });
    return { subject: record.subject, expiresAt: record.expiresAt };
  }

  private refuse(audience: TicketAudience, reason: string): never {
    this.metrics.tickets.inc({ audience, outcome: `refused-${reason}` });
    throw new UnauthorizedError('invalid ticket: unknown, used, expired, or minted for another origin', {
      realm: Realm.Herald,
      invalidToken: true,
    });
  }
}

function digest(ticket: string): string {
  return createHash('sha256').update(ticket).digest('hex');
}
