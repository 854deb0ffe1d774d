import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A replay records what it sent one row per batch, not one write per delivery: the batch's seq range for
 * the user, when it went out and when to check it. An ack of a delivery in the range records that send on
 * the delivery (by user and seq: the second index); the sweep takes each row once its time has come, puts
 * whatever in its range is still unacked on the redelivery clock, and deletes it (by time: the first).
 */
export class ReplayChecks1764110000000 implements MigrationInterface {
  name = 'ReplayChecks1764110000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE replay_checks (
        id          bigserial PRIMARY KEY,
        user_id     text NOT NULL,
        after_seq   bigint NOT NULL,
        through_seq bigint NOT NULL,
        -- A resumed SSE stream skipped the sent rows up to here (the client has them): not in this batch.
        resume_after_seq bigint NOT NULL DEFAULT 0,
        sent_at     timestamptz NOT NULL DEFAULT now(),
        check_at    timestamptz NOT NULL,
        CHECK (through_seq > after_seq)
      )`);
    await q.query(`CREATE INDEX replay_checks_due_idx ON replay_checks (check_at)`);
    await q.query(`CREATE INDEX replay_checks_user_idx ON replay_checks (user_id, through_seq)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS replay_checks`);
  }
}
