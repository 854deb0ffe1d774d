import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '../redis/redis-client';
import { REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';

const WINDOW_MS = 60_000;

/** Wrong admin passwords per client address, counted in Redis so every replica sees the same count. */
@Injectable()
export class LoginAttemptsRepository {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /**
   * Counts this attempt before the password is compared, atomically, so
   * parallel guesses cannot all slip under the limit. Returns the count with
   * it, and how long until the window ends (it starts at the first attempt).
   */
  async reserve(address: string): Promise<{ count: number; resetInMs: number }> {
    const key = this.keys.adminLoginFailures(address);
    const results = (await this.redis.multi().incr(key).pexpire(key, WINDOW_MS, 'NX').pttl(key).exec()) ?? [];
    for (const [error] of results) if (error) throw error;
    const count = Number(results[0]?.[1] ?? 0);
    const ttl = Number(results[2]?.[1] ?? WINDOW_MS);
    return { count, resetInMs: ttl > 0 ? ttl : WINDOW_MS };
  }

  /** The attempt was right after all: it does not count. */
  async release(address: string): Promise<void> {
    const key = this.keys.adminLoginFailures(address);
    // If the window ended meanwhile, DECR makes a fresh key: it still expires.
    await this.redis.multi().decr(key).pexpire(key, WINDOW_MS, 'NX').exec();
  }
}
