import { QueryFailedError, type DataSource, type EntityManager } from 'typeorm';

/**
 * Runs a parameterised statement and returns its rows. TypeORM's postgres
 * driver answers UPDATE and DELETE with `[rows, affectedCount]` and everything
 * else with `rows`; this evens that out.
 */
export async function query<T>(source: DataSource | EntityManager, sql: string, params: unknown[] = []): Promise<T[]> {
  const result = (await source.query(sql, params)) as unknown;
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as T[];
  }
  return result as T[];
}

/** A statement by name and text, as node-postgres takes it. */
interface PgQuery {
  name?: string;
  text: string;
  values?: unknown[];
}

/** The part of node-postgres's pool that `prepared` uses (TypeORM's postgres driver keeps it as `master`). */
interface PgPool {
  query(config: PgQuery): Promise<{ rows: unknown[] }>;
  connect(): Promise<{ query(config: PgQuery): Promise<{ rows: unknown[] }>; release(error?: Error): void }>;
}

/**
 * How many statement texts get a name of their own in each PostgreSQL connection. Past it (a caller that
 * built its text from data, by mistake), statements run unnamed, so a connection never holds more.
 */
export const PREPARED_NAMES_MAX = 256;
const preparedNames = new Map<string, string>();

/** The name a statement text is prepared under, or undefined past PREPARED_NAMES_MAX texts. */
function preparedName(sql: string): string | undefined {
  let name = preparedNames.get(sql);
  if (name === undefined && preparedNames.size < PREPARED_NAMES_MAX) {
    name = `herald_${preparedNames.size}`;
    preparedNames.set(sql, name);
  }
  return name;
}

/**
 * `query` for the statements of the hot paths (publish, send, ack, replay, redelivery): run as a named
 * prepared statement, so each pooled connection parses it once, and PostgreSQL plans it once as well
 * where its generic plan is as good as a custom one (it compares the two over the first five runs).
 * Under unicast load, PostgreSQL spent about a fifth of its CPU parsing and planning these statements
 * again for every run. The text must be a constant: it names the statement. Errors are TypeORM's
 * `QueryFailedError`, as `query` throws them.
 */
export async function prepared<T>(source: DataSource, sql: string, params: unknown[] = []): Promise<T[]> {
  const pool = (source.driver as unknown as { master?: PgPool }).master;
  const name = preparedName(sql);
  if (!pool || name === undefined) return query<T>(source, sql, params);
  try {
    const result = await pool.query({ name, text: sql, values: params });
    return result.rows as T[];
  } catch (error) {
    // Errors of the pool itself (a connection timeout) are not PostgreSQL's: passed on as they are.
    if (typeof (error as { code?: unknown }).code !== 'string') throw error;
    throw new QueryFailedError(sql, params, error as Error);
  }
}

/**
 * Runs statements, each as `prepared` runs one, in one transaction on one pooled connection, and returns
 * each one's rows: many writes, one commit. One that fails rolls all of them back, and so does
 * `beforeCommit` when it throws (its error is passed on as it is).
 */
export async function preparedInTransaction<T>(
  source: DataSource,
  statements: { sql: string; params: unknown[] }[],
  beforeCommit?: (results: T[][]) => Promise<void>,
): Promise<T[][]> {
  const pool = (source.driver as unknown as { master?: PgPool }).master;
  if (!pool) throw new Error('preparedInTransaction needs the postgres driver');
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query({ text: 'BEGIN' });
    const results: T[][] = [];
    for (const { sql, params } of statements) {
      const name = preparedName(sql);
      results.push((await client.query({ ...(name ? { name } : {}), text: sql, values: params })).rows as T[]);
    }
    await beforeCommit?.(results);
    await client.query({ text: 'COMMIT' });
    return results;
  } catch (error) {
    await client.query({ text: 'ROLLBACK' }).catch((rollback: Error) => (broken = rollback));
    if (typeof (error as { code?: unknown }).code !== 'string') throw error;
    throw new QueryFailedError(statements[0]?.sql ?? '', [], error as Error);
  } finally {
    // A connection that could not even roll back is not given to anyone else.
    client.release(broken);
  }
}

/**
 * Runs a multi-row write again when PostgreSQL chose it as a deadlock victim (40P01) or a serialization
 * failure (40001): it was rolled back whole, so running it again is safe.
 */
export async function retryOnDeadlock<T>(write: () => Promise<T>, tries = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (attempt >= tries || (code !== '40P01' && code !== '40001')) throw error;
    }
  }
}
