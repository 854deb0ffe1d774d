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
 * - `inbox_intervals`: the earlier intervals of a cursor that a resubscribe reset (`herald_subscribe`,
 *   replaced here to record them), so a topic's items from before stay in the inbox.
 * - `inbox_epoch`: the last `seq` and the time when this ran. An item at or below it whose delivery had ended
 *   by then (acked, expired, failed) counts as read, so no user meets a badge of everything from before.
 * - A partial index of the user's ended (expired, failed) rows, so the inbox lists them by user as the open
 *   and acked rows already are; written only when a row ends that way, never on publish or ack. Built
 *   partition by partition, each in its own statement, so writes wait only for the partition being indexed
 *   (the current one is small) and not for the whole table. (Not CONCURRENTLY: that waits for every open
 *   snapshot, and a replica starting beside this one waits on the migration lock with one.)
 *
 * New tables, an index and a function that does the same and records more: replicas of the previous release
 * keep running beside it (a rolling upgrade). Each step can run again after an interruption.
 */
export class Inbox1764170000000 implements MigrationInterface {
  name = 'Inbox1764170000000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE IF NOT EXISTS inbox_states (
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
      CREATE TABLE IF NOT EXISTS inbox_floors (
        user_id          text NOT NULL,
        stream_id        bigint NOT NULL,
        read_through_seq bigint NOT NULL,
        set_at           timestamptz NOT NULL,
        PRIMARY KEY (user_id, stream_id)
      )`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS inbox_intervals (
        user_id      text NOT NULL,
        stream_id    bigint NOT NULL,
        from_offset  bigint NOT NULL,
        until_offset bigint NOT NULL,
        PRIMARY KEY (user_id, stream_id, from_offset)
      )`);
    await q.query(
      `CREATE TABLE IF NOT EXISTS inbox_epoch (seq bigint NOT NULL, set_at timestamptz NOT NULL DEFAULT now())`,
    );
    await q.query(`
      INSERT INTO inbox_epoch (seq) SELECT COALESCE(max(seq), 0) FROM notifications
       WHERE NOT EXISTS (SELECT 1 FROM inbox_epoch)`);
    await q.query(SUBSCRIBE);

    await q.query(`
      CREATE INDEX IF NOT EXISTS deliveries_ended_by_user_idx ON ONLY deliveries (user_id, seq)
       WHERE status IN ('expired', 'failed')`);
    const parts = (await q.query(`
      SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'deliveries'::regclass ORDER BY 1`)) as { name: string }[];
    for (const { name } of parts) {
      await q.query(`
        CREATE INDEX IF NOT EXISTS ${name}_ended_by_user_idx ON ${name} (user_id, seq)
         WHERE status IN ('expired', 'failed')`);
      const [attached] = (await q.query(
        `SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = $1::regclass) AS yes`,
        [`${name}_ended_by_user_idx`],
      )) as { yes: boolean }[];
      if (!attached?.yes)
        await q.query(`ALTER INDEX deliveries_ended_by_user_idx ATTACH PARTITION ${name}_ended_by_user_idx`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS deliveries_ended_by_user_idx`);
    await q.query(`DROP TABLE IF EXISTS inbox_epoch, inbox_intervals, inbox_floors, inbox_states`);
  }
}

/**
 * `herald_subscribe` of BroadcastStreams, recording the earlier interval of a cursor it resets in
 * `inbox_intervals` (its settled offsets are the user's inbox items still; its open ones become rows, as
 * before).
 */
const SUBSCRIBE = `
  CREATE OR REPLACE FUNCTION herald_subscribe(p_user text, p_topic text, p_max integer) RETURNS text
  LANGUAGE plpgsql AS $$
  DECLARE s bigint; h bigint; c record;
  BEGIN
    IF EXISTS (SELECT 1 FROM topic_subscriptions WHERE user_id = p_user AND topic = p_topic) THEN
      RETURN 'exists';
    END IF;
    IF (SELECT count(*) FROM topic_subscriptions WHERE user_id = p_user) >= p_max THEN RETURN 'limit'; END IF;
    INSERT INTO topic_subscriptions (user_id, topic) VALUES (p_user, p_topic) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN RETURN 'exists'; END IF;
    INSERT INTO streams (topic) VALUES (p_topic) ON CONFLICT (topic) DO NOTHING;
    SELECT id, head INTO s, h FROM streams WHERE topic = p_topic FOR SHARE;
    SELECT * INTO c FROM cursors WHERE user_id = p_user AND stream_id = s FOR UPDATE;
    IF FOUND THEN
      PERFORM herald_hand_off(x.id, ARRAY[p_user], NULL) FROM notifications x
        WHERE x.stream_id = s AND x.stream_offset > c.settled_through
          AND x.stream_offset <= coalesce(c.until_offset, h) AND x.expires_at > now()
        ORDER BY x.stream_offset;
      IF coalesce(c.until_offset, h) > c.from_offset THEN
        INSERT INTO inbox_intervals (user_id, stream_id, from_offset, until_offset)
        VALUES (p_user, s, c.from_offset, coalesce(c.until_offset, h)) ON CONFLICT DO NOTHING;
      END IF;
      UPDATE cursors SET from_offset = h, until_offset = NULL, settled_through = h, settled_above = '{}',
                         updated_at = now()
       WHERE user_id = p_user AND stream_id = s;
    ELSE
      INSERT INTO cursors (user_id, stream_id, from_offset, settled_through) VALUES (p_user, s, h, h);
    END IF;
    RETURN 'added';
  END $$`;
