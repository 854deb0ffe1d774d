import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { REDIS } from '../redis/redis.module';
import { RedisKeys } from '../redis/redis-keys';

const WINDOW_MS = 60_000;

/** Wrong admin passwords per client address, counted in Redis so every replica sees the same count. */
@Injectable()
export class LoginAttemptsRepository {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Failures in the current window, and how long until it ends. */
  async failures(address: string): Promise<{ count: number; resetInMs: number }> {
    const key = this.keys.adminLoginFailures(address);
    const [[, count], [, ttl]] = (await this.redis.multi().get(key).pttl(key).exec()) as [
      [Error | null, string | null],
      [Error | null, number],
    ];
    return { count: Number(count ?? 0), resetInMs: ttl > 0 ? ttl : WINDOW_MS };
  }

  /** Counts one; the window starts at the first failure. */
  async recordFailure(address: string): Promise<void> {
    const key = this.keys.adminLoginFailures(address);
    await this.redis.multi().incr(key).pexpire(key, WINDOW_MS, 'NX').exec();
  }
}
