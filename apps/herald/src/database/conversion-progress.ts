import type { QueryRunner } from 'typeorm';

/** A step logs at its start, at most this often while it runs, and at its end. */
const LOG_EVERY_MS = 1000;

/**
 * The progress of one step of a conversion migration, as `conversion progress` log lines
 * (`{ step, done, total }`, and `seconds` on the last), written to the data source's logger at level `log`
 * (createDataSource's `progress`: Nest's logger in a replica and in `npm run migrate`, so JSON lines). A step
 * with nothing to convert (a fresh install) logs nothing.
 */
export class ConversionProgress {
  private readonly startedAt = Date.now();
  private loggedAt = 0;
  private done = 0;

  constructor(
    private readonly q: QueryRunner,
    private readonly step: string,
    private readonly total: number,
  ) {
    this.log();
  }

  add(n: number): void {
    this.done += n;
    if (Date.now() - this.loggedAt >= LOG_EVERY_MS) this.log();
  }

  end(): void {
    this.log((Date.now() - this.startedAt) / 1000);
  }

  private log(seconds?: number): void {
    this.loggedAt = Date.now();
    if (this.total === 0) return;
    this.q.dataSource.logger.log('log', {
      message: 'conversion progress',
      step: this.step,
      done: this.done,
      total: this.total,
      ...(seconds !== undefined ? { seconds } : {}),
    });
  }
}

/**
 * Runs `batch` (one statement, its own commit: the migration runs outside a transaction) until it does
 * fewer than `size`, counting what each did. An interrupted run keeps the batches it committed; run
 * again, it starts from what is left.
 */
export async function inBatches(
  progress: ConversionProgress,
  size: number,
  batch: () => Promise<number>,
): Promise<void> {
  for (;;) {
    const n = await batch();
    progress.add(n);
    if (n < size) break;
  }
  progress.end();
}

/** One integer a statement selects as `n`. */
export async function selectCount(q: QueryRunner, sql: string, params: unknown[] = []): Promise<number> {
  const rows = (await q.query(sql, params)) as { n: number | string }[];
  return Number(rows[0]?.n ?? 0);
}
