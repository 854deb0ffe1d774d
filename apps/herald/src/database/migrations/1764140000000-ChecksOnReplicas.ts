import { MigrationInterface, QueryRunner } from 'typeorm';
import { ConversionProgress, inBatches, selectCount } from '../conversion-progress';

/** Send records settled per statement: each names up to a few thousand users. */
const CHECKS_PER_BATCH = 200;

/**
 * One batch of `send_checks`, lowest ids first, settled as the previous version's sweep settled them and
 * deleted in the same statement. A stream notification's users are handed off to rows
 * (`herald_hand_off`); for one from before the stream record, each delivery it names that is still
 * `pending` (no send recorded since: an ack, a replay's check or a resend would have moved it) is recorded
 * as sent at the record's time and made due now. A delivery named by several records counts once, at
 * the earliest. Each row is found by its primary key (LATERAL, OFFSET 0: with the state inside, the planner
 * scanned every open row of the table per batch) and updated by its ctid (a TID scan per row: `ctid = ANY`
 * of the batch's array beside it made each row scan the whole array, 0.8 s per 14 000 rows).
 */
const SETTLE_BATCH = `
  WITH due AS (
         DELETE FROM send_checks WHERE id = ANY (ARRAY(SELECT id FROM send_checks ORDER BY id LIMIT $1))
         RETURNING notification_id, user_ids, sent_at),
       kind AS MATERIALIZED (
         SELECT due.*, n.stream_id IS NOT NULL AS streamed
           FROM due JOIN notifications n ON n.id = due.notification_id),
       handed AS (
         SELECT herald_hand_off(notification_id, user_ids, sent_at) AS moved FROM kind WHERE streamed),
       named AS MATERIALIZED (
         SELECT DISTINCT ON (k.notification_id, u.user_id) k.notification_id, u.user_id, k.sent_at
           FROM kind k, unnest(k.user_ids) AS u(user_id)
          WHERE NOT k.streamed
          ORDER BY k.notification_id, u.user_id, k.sent_at),
       unacked AS (
         SELECT d.row_id, c.sent_at
           FROM named c,
                LATERAL (
                  SELECT x.ctid AS row_id, x.status, x.expires_at FROM deliveries x
                   WHERE x.notification_id = c.notification_id AND x.user_id = c.user_id OFFSET 0) d
          WHERE d.status = 'pending' AND d.expires_at > now()),
       settled AS (
         UPDATE deliveries d
            SET status = 'sent', attempts = d.attempts + 1, next_attempt_at = now(),
                first_sent_at = COALESCE(d.first_sent_at, u.sent_at), last_sent_at = u.sent_at, updated_at = now()
           FROM unacked u
          WHERE d.ctid = u.row_id
         RETURNING 1)
  SELECT (SELECT count(*) FROM due)::int AS n,
         (SELECT count(*) FROM settled)::int AS settled,
         (SELECT coalesce(sum(moved), 0) FROM handed)::int AS handed_off`;

/**
 * A broadcast's send is checked by the replica that sent it, from memory (ADR 0009): `send_checks` goes.
 * The records still in it (written by replicas stopped for this upgrade) are settled first, as the sweep
 * settled them, `CHECKS_PER_BATCH` a statement. Outside a transaction: each batch commits with its
 * deletion, so an interrupted run leaves no record settled twice and settles the rest when run again.
 */
export class ChecksOnReplicas1764140000000 implements MigrationInterface {
  name = 'ChecksOnReplicas1764140000000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    // Absent: an earlier run was interrupted between the drop and its entry in the migrations table.
    if (!(await q.hasTable('send_checks'))) return;
    const total = await selectCount(q, `SELECT count(*)::int AS n FROM send_checks`);
    const progress = new ConversionProgress(q, 'send checks settled', total);
    await inBatches(progress, CHECKS_PER_BATCH, async () => {
      const rows = (await q.query(SETTLE_BATCH, [CHECKS_PER_BATCH])) as { n: number }[];
      return rows[0]?.n ?? 0;
    });
    await q.query(`DROP TABLE IF EXISTS send_checks`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE IF NOT EXISTS send_checks (
        id              bigserial PRIMARY KEY,
        notification_id uuid NOT NULL,
        user_ids        text[] NOT NULL,
        sent_at         timestamptz NOT NULL DEFAULT now(),
        check_at        timestamptz NOT NULL,
        CHECK (cardinality(user_ids) > 0)
      )`);
    await q.query(`CREATE INDEX IF NOT EXISTS send_checks_due_idx ON send_checks (check_at)`);
  }
}
