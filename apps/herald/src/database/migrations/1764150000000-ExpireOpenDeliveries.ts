import { MigrationInterface, QueryRunner } from 'typeorm';
import { ConversionProgress, inBatches, selectCount } from '../conversion-progress';

/** Rows ended per statement. */
const ROWS_PER_BATCH = 10_000;

/**
 * Ends `expired` the deliveries rows still open (`pending` or `sent`) past their TTL when the upgrade
 * starts (a previous version stopped with its sweep behind leaves them), so the converted record's counts
 * read them expired at once instead of after the new sweep, which ends 10 000 a run. The same change as the
 * sweep's `expireDue`, `ROWS_PER_BATCH` rows a statement found through the open rows' expiry index, outside
 * a transaction: each batch commits alone, so an interrupted run ends the rest when run again.
 */
export class ExpireOpenDeliveries1764150000000 implements MigrationInterface {
  name = 'ExpireOpenDeliveries1764150000000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    const [{ cutoff }] = (await q.query(`SELECT now() AS cutoff`)) as [{ cutoff: Date }];
    const total = await selectCount(
      q,
      `SELECT count(*)::int AS n FROM deliveries WHERE status IN ('pending', 'sent') AND expires_at <= $1`,
      [cutoff],
    );
    const progress = new ConversionProgress(q, 'open deliveries past their TTL expired', total);
    await inBatches(progress, ROWS_PER_BATCH, () =>
      selectCount(
        q,
        `WITH due AS (
           SELECT ctid AS row_id FROM deliveries
            WHERE status IN ('pending', 'sent') AND expires_at <= $1 LIMIT $2),
         ended AS (
           UPDATE deliveries d SET status = 'expired', next_attempt_at = NULL, updated_at = now()
            WHERE d.ctid = ANY (ARRAY(SELECT row_id FROM due)) AND d.status IN ('pending', 'sent')
           RETURNING 1)
         SELECT count(*)::int AS n FROM ended`,
        [cutoff, ROWS_PER_BATCH],
      ),
    );
  }

  async down(): Promise<void> {
    // Nothing to undo: an expired delivery is final in every version.
  }
}
