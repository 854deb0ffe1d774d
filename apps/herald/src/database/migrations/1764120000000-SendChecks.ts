import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A topic or everyone broadcast is recorded as one row per replica that sent it, not as a write per
 * delivery: the notification, the users the replica sent it to, when and when to check it. An ack records
 * the send on the delivery as it acks it; the sweep takes each row once its time has come, puts whatever it
 * names that is still unacked on the redelivery clock, and deletes it (by time: the index). Like
 * `replay_checks`, no foreign key: a row lives about one ack timeout, and nothing deletes notifications.
 */
export class SendChecks1764120000000 implements MigrationInterface {
  name = 'SendChecks1764120000000';

  async up(q: QueryRunner): Promise<void> {
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

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS send_checks`);
  }
}
