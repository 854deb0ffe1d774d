import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { TEST_REDIS_URL } from './env';

/** A key prefix private to one test file, and the cleanup of everything under it. */
export function testRedisPrefix(label: string): string {
  return `herald-test-${label}-${randomBytes(4).toString('hex')}`;
}

export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** A connection to the tests' Redis, to look at what a replica stored; the caller disconnects it. */
export function testRedisClient(): Redis {
  return new Redis(TEST_REDIS_URL);
}
