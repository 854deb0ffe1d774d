import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { HERALD_MAIN } from './paths';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from './env';

/**
 * Fails the whole run at once, naming the service and its address, when
 * PostgreSQL or Redis cannot be reached. No test skips itself instead.
 */
export default async function globalSetup(): Promise<void> {
  const problems: string[] = [];
  const pg = new Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await pg.connect();
    await pg.query('SELECT 1');
  } catch (error) {
    problems.push(`PostgreSQL is not reachable at ${redact(TEST_POSTGRES_URL)}: ${(error as Error).message}`);
  } finally {
    await pg.end().catch(() => undefined);
  }
  const redis = new Redis(TEST_REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    problems.push(`Redis is not reachable at ${redact(TEST_REDIS_URL)}: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
  if (!existsSync(HERALD_MAIN)) {
    problems.push('dist/apps/herald/main.js is missing: run `npm test` (it builds first) or `npm run build`');
  }
  // The log scan after the run (global-teardown.ts) looks at what this run wrote.
  (globalThis as { heraldRunStartedAt?: number }).heraldRunStartedAt = Date.now();
  if (problems.length > 0) {
    throw new Error(
      `Cannot run the integration and end-to-end tests:\n  - ${problems.join('\n  - ')}\n` +
        'Start the missing service (see README.md, "Running the tests"), or point TEST_POSTGRES_URL / TEST_REDIS_URL at one.',
    );
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
}
