import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The synced inbox's read state (ADR 0026). A user's inbox items are what the record already holds (their
 * `deliveries` rows and the stream offsets their cursors cover): nothing is written per item at publish.
 *
 * - `inbox_states`: a row only where the user acted on an item (seen, read, archived, or their reversal).
 *   `read_set_at` is when read or unread was last set, compared with the floor's `set_at` (the latest wins).
 *   Retention deletes an item's rows when it drops the item's partition.
 * - `inbox_floors`: "mark all read" per (user, stream; 0 for the user's direct notifications): items up to
 *   `read_through_seq` are read unless a state row set after `set_at` says otherwise.
 * - `inbox_epoch`: the last `seq` when this ran. An item at or below it whose delivery had ended (acked, or
 *   final) counts as read, so no user meets a badge of everything from before the upgrade.
 * - A partial index of the user's ended (expired, failed) rows, so the inbox lists them by user as the open
 *   and acked rows already are; it is written only when a row ends that way, never on publish or ack.
 *
 * New tables and an index only: replicas of the previous release keep running beside it (a rolling upgrade).
 */
export class Inbox1764170000000 implements MigrationInterface {
  name = 'Inbox1764170000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE inbox_states (
        notification_id uuid NOT NULL,
        user_id         text NOT NULL,
        seen_at         timestamptz,
        read_at         timestamptz,
        read_set_at     timestamptz,
        archived_at     timestamptz,
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (notification_id, user_id)
      )`);
    await q.query(`
      CREATE TABLE inbox_floors (
        user_id          text NOT NULL,
        stream_id        bigint NOT NULL,
        read_through_seq bigint NOT NULL,
        set_at           timestamptz NOT NULL,
        PRIMARY KEY (user_id, stream_id)
      )`);
    await q.query(`CREATE TABLE inbox_epoch (seq bigint NOT NULL, set_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`INSERT INTO inbox_epoch (seq) SELECT COALESCE(max(seq), 0) FROM notifications`);
    await q.query(`
      CREATE INDEX deliveries_ended_by_user_idx ON deliveries (user_id, seq) WHERE status IN ('expired', 'failed')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX deliveries_ended_by_user_idx`);
    await q.query(`DROP TABLE inbox_epoch, inbox_floors, inbox_states`);
  }
}
