import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * For the admin console: a user's latest ack (the Connections page) without
 * scanning every delivery. Partial, so only acked rows pay for it.
 */
export class AdminIndexes1764100000000 implements MigrationInterface {
  name = 'AdminIndexes1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX IF NOT EXISTS deliveries_acked_by_user_idx ON deliveries (user_id, acked_at DESC) WHERE status = 'acked'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS deliveries_acked_by_user_idx`);
  }
}
