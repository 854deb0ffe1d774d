import type { DataSource, EntityManager } from 'typeorm';

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
