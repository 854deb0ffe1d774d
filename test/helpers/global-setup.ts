import { existsSync } from 'node:fs';
import { postgresProblem, redisProblem } from '../../scripts/lib/test-services';
import { HERALD_MAIN } from './paths';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from './env';

/**
 * Fails the whole run at once, naming the service and its address, when
 * PostgreSQL or Redis cannot be reached. No test skips itself instead.
 */
export default async function globalSetup(): Promise<void> {
  const problems: string[] = [];
  const postgres = await postgresProblem(TEST_POSTGRES_URL);
  if (postgres) problems.push(`PostgreSQL is not reachable at ${redact(TEST_POSTGRES_URL)}: ${postgres}`);
  const redis = await redisProblem(TEST_REDIS_URL);
  if (redis) problems.push(`Redis is not reachable at ${redact(TEST_REDIS_URL)}: ${redis}`);
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
