import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A broadcast's send is checked by the replica that sent it, from memory (ADR 0009): `send_checks` goes.
 * The records still in it (written by replicas stopped for this upgrade) are settled here, as the sweep
 * settled them: what a record names and is still unacked is put on the redelivery clock, due now. A stream
 * notification is handed off to a row (`herald_hand_off`); one from before the stream record (its
 * deliveries are rows) has those rows recorded as sent at the record's time.
 */
export class ChecksOnReplicas1764140000000 implements MigrationInterface {
  name = 'ChecksOnReplicas1764140000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      SELECT herald_hand_off(c.notification_id, c.user_ids, c.sent_at)
        FROM send_checks c JOIN notifications n ON n.id = c.notification_id
       WHERE n.stream_id IS NOT NULL
       ORDER BY c.id`);
    await q.query(`
      UPDATE deliveries d
         SET status = 'sent', attempts = d.attempts + 1, next_attempt_at = now(),
             first_sent_at = COALESCE(d.first_sent_at, c.sent_at), last_sent_at = c.sent_at, updated_at = now()
        FROM (SELECT c.notification_id, unnest(c.user_ids) AS user_id, max(c.sent_at) AS sent_at
                FROM send_checks c JOIN notifications n ON n.id = c.notification_id
               WHERE n.stream_id IS NULL GROUP BY 1, 2) c
       WHERE d.notification_id = c.notification_id AND d.user_id = c.user_id
         AND d.status IN ('pending', 'sent') AND d.expires_at > now()
         AND (d.last_sent_at IS NULL OR d.last_sent_at < c.sent_at)`);
    await q.query(`DROP TABLE send_checks`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE send_checks (
        id              bigserial PRIMARY KEY,
        notification_id uuid NOT NULL,
        user_ids        text[] NOT NULL,
        sent_at         timestamptz NOT NULL DEFAULT now(),
        check_at        timestamptz NOT NULL,
        CHECK (cardinality(user_ids) > 0)
      )`);
    await q.query(`CREATE INDEX send_checks_due_idx ON send_checks (check_at)`);
  }
}
