import type { RedisClient } from '../redis/redis-client';
import { RateLimitedError } from '../common/errors';
import type { HeraldConfig } from '../config/config.schema';
import type { PublisherLimits } from '../config/publisher-limits.config';
import type { RedisKeys } from '../redis/redis-keys';
import { PUBLISHER_KEY_PREFIX } from '../auth/publisher-key-id';

/** Past this, a publish batch goes on unchecked (fail open): the limiter must not stall publishing. */
export const LIMITER_TIMEOUT_MS = 50;
/** How long a replica may spend tokens it took ahead from Redis; what is left is given back on its next trip. */
const ALLOWANCE_MS = 1000;

/**
 * Two token buckets per publisher key, in one hash slot, by Redis's clock. ARGV: rate per second, burst,
 * recipients per minute, the notifications and recipients a replica gives back (its unspent allowance),
 * then each publish's recipients. A publish is taken when both buckets hold enough, else refused and takes
 * nothing. Then, when both buckets are still over half full, the replica is given an allowance: up to a
 * tenth of each bucket, never below half. Answers the two levels left and the allowance (floored), then per
 * publish a code (0 taken, 1 no notification left, 2 too few recipients left, 3 more recipients than a whole
 * minute's budget) and the milliseconds until it would fit. An allowance is of both kinds or none: a
 * replica keeps only one it can spend.
 */
const CHARGE_SCRIPT = `
local perMs = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
local rPerMs = rpm / 60000
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function level(key, cap, rate, back)
  local saved = redis.call('HMGET', key, 'level', 'at')
  local value = cap
  if saved[1] then value = tonumber(saved[1]) + math.max(0, now - tonumber(saved[2])) * rate + back end
  if value > cap then return cap end
  return value
end
local n = level(KEYS[1], burst, perMs, tonumber(ARGV[4]))
local r = level(KEYS[2], rpm, rPerMs, tonumber(ARGV[5]))
local out = {0, 0, 0, 0}
for i = 6, #ARGV do
  local need = tonumber(ARGV[i])
  local code, wait = 0, 0
  if n < 1 then
    code = 1
    wait = math.ceil((1 - n) / perMs)
  elseif need > rpm then
    code = 3
    wait = 60000
  elseif need > r then
    code = 2
    wait = math.ceil((need - r) / rPerMs)
  else
    n = n - 1
    r = r - need
  end
  out[#out + 1] = code
  out[#out + 1] = wait
end
local giveN = math.floor(math.min(n - burst / 2, burst / 10))
local giveR = math.floor(math.min(r - rpm / 2, rpm / 10))
if giveN >= 1 and giveR >= 1 then
  out[3] = giveN
  out[4] = giveR
  n = n - giveN
  r = r - giveR
end
redis.call('HSET', KEYS[1], 'level', n, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - n) / perMs) + 1000)
redis.call('HSET', KEYS[2], 'level', r, 'at', now)
redis.call('PEXPIRE', KEYS[2], math.ceil((rpm - r) / rPerMs) + 1000)
out[1] = math.floor(n)
out[2] = math.floor(r)
return out
`;

type ChargeCommand = (
  notificationsKey: string,
  recipientsKey: string,
  ...args: (string | number)[]
) => Promise<number[]>;

interface Charge {
  recipients: number;
  settle: (refusal: RateLimitedError | null) => void;
}

/** Tokens a replica took ahead from a key's buckets in Redis, to spend without a round trip. */
interface Allowance {
  notifications: number;
  recipients: number;
  until: number;
}

/** What the limiter reports: its two counters (MetricsService's) and a logger. */
export interface LimiterReports {
  rateLimited: { inc(labels: { reason: 'notifications' | 'recipients' }): void };
  failOpen: { inc(labels: { reason: 'timeout' | 'error' }): void };
  logger: { warn(message: object): void; log(message: object): void };
}

/**
 * Per-publisher limits (ADR 0005): a token bucket of notifications (rate, burst) and one of recipients per
 * minute, shared by every replica in Redis, one script per key and publish batch. While a key's buckets are
 * over half full, Redis hands the asking replica an allowance (up to a tenth of each, for a second), which
 * it spends without a round trip; below half, every publish is decided by Redis. A replica never admits a
 * token Redis did not give it, so the limits hold across replicas; refusals are always Redis's. When Redis
 * answers late (over 50 ms) or not at all, the batch goes on unchecked (fail open) and a counter says so.
 */
export class PublisherLimiter {
  private readonly allowances = new Map<string, Allowance>();
  private queued = new Map<string, Charge[]>();
  private armed = false;
  /** Set while Redis is not answering: the warning is logged once per outage. */
  private failing = false;
  private readonly chargeCommand: ChargeCommand;

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly config: Pick<HeraldConfig, 'publishLimits' | 'publisherLimits'>,
    private readonly reports: LimiterReports,
  ) {
    redis.defineCommand('heraldPublisherCharge', { numberOfKeys: 2, lua: CHARGE_SCRIPT });
    this.chargeCommand = (redis as unknown as { heraldPublisherCharge: ChargeCommand }).heraldPublisherCharge.bind(
      redis,
    );
  }

  /**
   * The limits of a publisher: an API key's (its own, or the defaults), or null for a publisher that is no
   * API key (the admin console's broadcasts, made by a logged-in admin) and is not limited.
   */
  limits(publisherId: string): PublisherLimits | null {
    if (!publisherId.startsWith(PUBLISHER_KEY_PREFIX)) return null;
    return this.config.publisherLimits[publisherId] ?? this.config.publishLimits;
  }

  /**
   * Admits one publish whose `recipients` are known before it is stored (a user list): at once (answering
   * undefined) for a publisher that is not limited or from this replica's allowance when it has enough,
   * else by Redis (a promise, rejected with the 429).
   */
  admit(keyId: string, recipients: number): Promise<void> | undefined {
    if (!this.limits(keyId)) return undefined;
    const allowance = this.allowances.get(keyId);
    if (
      allowance &&
      allowance.until > performance.now() &&
      allowance.notifications >= 1 &&
      allowance.recipients >= recipients
    ) {
      allowance.notifications -= 1;
      allowance.recipients -= recipients;
      // Admitted at once: no promise, so the publish path does not wait a turn for nothing.
      return undefined;
    }
    return new Promise<RateLimitedError | null>((settle) => this.enqueue(keyId, { recipients, settle })).then(
      (refusal) => {
        if (refusal) throw refusal;
      },
    );
  }

  /**
   * Charges publishes whose recipients were just resolved inside their transaction (topics, everyone):
   * always decided by Redis (a publisher that is not limited takes nothing). Answers, in order, null for
   * each one taken and the 429 of each one refused.
   */
  charge(items: { keyId: string; recipients: number }[]): Promise<(RateLimitedError | null)[]> {
    return Promise.all(
      items.map(({ keyId, recipients }) =>
        this.limits(keyId)
          ? new Promise<RateLimitedError | null>((settle) => this.enqueue(keyId, { recipients, settle }))
          : Promise.resolve(null),
      ),
    );
  }

  private enqueue(keyId: string, charge: Charge): void {
    const list = this.queued.get(keyId);
    if (list) list.push(charge);
    else this.queued.set(keyId, [charge]);
    if (this.armed) return;
    this.armed = true;
    // Everything charged in this turn of the event loop goes in one script per key.
    setImmediate(() => {
      this.armed = false;
      const batch = this.queued;
      this.queued = new Map();
      for (const [key, charges] of batch) void this.send(key, charges);
    });
  }

  private async send(keyId: string, charges: Charge[]): Promise<void> {
    const limits = this.limits(keyId)!;
    // The unspent allowance goes back with this trip (a new one may come with the answer).
    const back = this.allowances.get(keyId);
    this.allowances.delete(keyId);
    const args = [
      limits.perSecond,
      limits.burst,
      limits.recipientsPerMinute,
      back?.notifications ?? 0,
      back?.recipients ?? 0,
      ...charges.map((c) => c.recipients),
    ];
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), LIMITER_TIMEOUT_MS)));
    let answer: number[] | 'late';
    try {
      answer = await Promise.race([
        this.chargeCommand(
          this.keys.publisherBucket(keyId, 'notifications'),
          this.keys.publisherBucket(keyId, 'recipients'),
          ...args,
        ),
        late,
      ]);
    } catch (error) {
      this.failOpen(keyId, charges, 'error', (error as Error).message);
      return;
    } finally {
      clearTimeout(timer);
    }
    if (answer === 'late') {
      this.failOpen(keyId, charges, 'timeout', `no answer within ${LIMITER_TIMEOUT_MS} ms`);
      return;
    }
    if (this.failing) this.reports.logger.log({ message: 'publisher limits checked again' });
    this.failing = false;
    if (answer[2]! > 0) {
      const held = this.allowances.get(keyId);
      this.allowances.set(keyId, {
        notifications: answer[2]! + (held?.notifications ?? 0),
        recipients: answer[3]! + (held?.recipients ?? 0),
        until: performance.now() + ALLOWANCE_MS,
      });
    }
    charges.forEach((c, i) => {
      const code = answer[4 + 2 * i]!;
      c.settle(code === 0 ? null : this.refusal(keyId, limits, code, answer[5 + 2 * i]!, answer[1]!, c.recipients));
    });
  }

  private failOpen(keyId: string, charges: Charge[], reason: 'timeout' | 'error', detail: string): void {
    this.reports.failOpen.inc({ reason });
    if (!this.failing) {
      this.reports.logger.warn({
        message: 'publisher limits not checked; publishing goes on',
        publisherId: keyId,
        detail,
      });
    }
    this.failing = true;
    for (const c of charges) c.settle(null);
  }

  private refusal(
    keyId: string,
    limits: PublisherLimits,
    code: number,
    waitMs: number,
    recipientsLeft: number,
    recipients: number,
  ): RateLimitedError {
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    const reason = code === 1 ? 'notifications' : 'recipients';
    this.reports.rateLimited.inc({ reason });
    const policy =
      `"notifications";q=${limits.burst};w=${Math.max(1, Math.ceil(limits.burst / limits.perSecond))}, ` +
      `"recipients";q=${limits.recipientsPerMinute};w=60`;
    const current =
      code === 1 ? `"notifications";r=0;t=${seconds}` : `"recipients";r=${Math.max(0, recipientsLeft)};t=${seconds}`;
    const message =
      code === 1
        ? `publisher ${keyId} is over its rate of ${limits.perSecond} notifications per second (burst ${limits.burst}); nothing was stored, retry in ${seconds} s`
        : code === 2
          ? `publisher ${keyId} has ${Math.max(0, recipientsLeft)} of its ${limits.recipientsPerMinute} recipients per minute left, and this publish reaches ${recipients}; nothing was stored, retry in ${seconds} s`
          : `this publish reaches ${recipients} recipients, more than publisher ${keyId}'s whole budget of ${limits.recipientsPerMinute} per minute; nothing was stored (split the audience, or raise HERALD_PUBLISH_RECIPIENTS_PER_MINUTE)`;
    return new RateLimitedError(message, seconds, { policy, current });
  }
}
