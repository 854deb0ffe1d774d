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
