/**
 * Where the tests find PostgreSQL and Redis. The one place tests read the
 * environment; defaults are the local servers of a developer machine and CI.
 */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Another build of the server for the replicas to run (`.../dist/apps/herald/main.js`): the bench's A/B. */
export const HERALD_SERVER_MAIN = process.env.HERALD_SERVER_MAIN;
