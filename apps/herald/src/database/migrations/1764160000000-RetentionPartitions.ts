import { MigrationInterface, QueryRunner } from 'typeorm';
import { ConversionProgress, inBatches, selectCount } from '../conversion-progress';

/** Idempotency keys copied per statement. */
const KEYS_PER_BATCH = 50_000;

/** The tables that grow with notifications, each partitioned by its notification id (ADR 0020). */
const GROWING = [
  {
    table: 'notifications',
    key: 'id',
    columns: `
        id              uuid NOT NULL,
        seq             bigint NOT NULL DEFAULT nextval('notifications_seq_seq'),
        publisher_id    text NOT NULL,
        idempotency_key text,
        request_hash    text NOT NULL,
        audience        jsonb NOT NULL,
        topic           text,
        event           text NOT NULL,
        payload         jsonb NOT NULL,
        ttl_seconds     integer NOT NULL CONSTRAINT notifications_ttl_seconds_check CHECK (ttl_seconds > 0),
        recipients      integer NOT NULL DEFAULT 0,
        created_at      timestamptz NOT NULL DEFAULT now(),
        expires_at      timestamptz NOT NULL,
        stream_id       bigint,
        stream_offset   bigint,
        PRIMARY KEY (id)`,
    // Renamed on the history table, so the partitioned table's indexes can take the names (its CHECKs keep
    // theirs: a partition's must match the parent's).
    indexes: ['notifications_created_at_idx', 'notifications_idempotency_uq', 'notifications_stream_offset_uq'],
    constraints: ['notifications_pkey', 'notifications_seq_key'],
    create: [
      `CREATE INDEX notifications_seq_idx ON notifications (seq)`,
      `CREATE INDEX notifications_created_at_idx ON notifications (created_at)`,
      `CREATE INDEX notifications_stream_offset_idx ON notifications (stream_id, stream_offset)
         WHERE stream_id IS NOT NULL`,
    ],
  },
  {
    table: 'deliveries',
    key: 'notification_id',
    columns: `
        notification_id uuid NOT NULL,
        user_id         text NOT NULL,
        seq             bigint NOT NULL,
        status          text NOT NULL DEFAULT 'pending' CONSTRAINT deliveries_status_check
                        CHECK (status IN ('pending', 'sent', 'acked', 'expired', 'failed')),
        attempts        integer NOT NULL DEFAULT 0,
        expires_at      timestamptz NOT NULL,
        next_attempt_at timestamptz,
        first_sent_at   timestamptz,
        last_sent_at    timestamptz,
        acked_at        timestamptz,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (notification_id, user_id)`,
    indexes: [
      'deliveries_open_by_user_idx',
      'deliveries_due_idx',
      'deliveries_open_expiry_idx',
      'deliveries_acked_by_user_idx',
    ],
    constraints: ['deliveries_pkey'],
    create: [
      `CREATE INDEX deliveries_open_by_user_idx ON deliveries (user_id, seq) WHERE status IN ('pending', 'sent')`,
      `CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at)
         WHERE status IN ('pending', 'sent') AND next_attempt_at IS NOT NULL`,
      `CREATE INDEX deliveries_open_expiry_idx ON deliveries (expires_at) WHERE status IN ('pending', 'sent')`,
      `CREATE INDEX deliveries_acked_by_user_idx ON deliveries (user_id, acked_at DESC) WHERE status = 'acked'`,
    ],
  },
  {
    table: 'broadcast_acks',
    key: 'notification_id',
    columns: `
        notification_id uuid NOT NULL,
        acked_at        timestamptz NOT NULL DEFAULT now(),
        user_ids        text[] NOT NULL`,
    indexes: ['broadcast_acks_notification_idx'],
    constraints: [],
    create: [`CREATE INDEX broadcast_acks_notification_idx ON broadcast_acks (notification_id)`],
  },
];

/**
 * Retention by partition (ADR 0020). `notifications`, `deliveries` and `broadcast_acks` become tables
 * partitioned by range of the notification id, a UUIDv7 whose first 48 bits are its creation's
 * millisecond: each partition holds the notifications of one time window and their delivery records, and
 * retention drops it whole once everything in it is final and old enough. The service creates the
 * partitions ahead (`PartitionMaintainer`).
 *
 * Existing tables are not rewritten: each becomes its table's DEFAULT partition (`*_history`), which also
 * catches any id outside the partitions made so far. Retention works through it in bounded batches. The
 * idempotency keys move to their own table (`idempotency_keys`): a unique index on a partitioned table
 * must hold its partition key, so the old `(publisher_id, idempotency_key)` index could not stay global.
 * `herald_settle` passes an offset that retention removed, as it passes an expired one.
 */
export class RetentionPartitions1764160000000 implements MigrationInterface {
  name = 'RetentionPartitions1764160000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE idempotency_keys (
        publisher_id    text NOT NULL,
        idempotency_key text NOT NULL,
        notification_id uuid NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (publisher_id, idempotency_key)
      )`);
    const keys = new ConversionProgress(
      q,
      'idempotency keys',
      await selectCount(q, `SELECT count(*)::int AS n FROM notifications WHERE idempotency_key IS NOT NULL`),
    );
    let after = '00000000-0000-0000-0000-000000000000';
    await inBatches(keys, KEYS_PER_BATCH, async () => {
      const [row] = (await q.query(
        `WITH batch AS (
           SELECT id, publisher_id, idempotency_key, created_at FROM notifications
            WHERE idempotency_key IS NOT NULL AND id > $1 ORDER BY id LIMIT $2),
         copied AS (
           INSERT INTO idempotency_keys (publisher_id, idempotency_key, notification_id, created_at)
           SELECT publisher_id, idempotency_key, id, created_at FROM batch RETURNING 1)
         SELECT (SELECT count(*) FROM copied)::int AS n, (SELECT max(id::text) FROM batch) AS last`,
        [after, KEYS_PER_BATCH],
      )) as { n: number; last: string | null }[];
      if (row?.last) after = row.last;
      return row?.n ?? 0;
    });
    await q.query(`CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at)`);
    await q.query(`CREATE INDEX idempotency_keys_notification_idx ON idempotency_keys (notification_id)`);

    // Partitions are dropped with their notifications, not row by row: no foreign key between them.
    await q.query(`ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_notification_id_fkey`);
    const progress = new ConversionProgress(q, 'tables partitioned (history attached as default)', GROWING.length);
    for (const t of GROWING) {
      await q.query(`ALTER TABLE ${t.table} RENAME TO ${t.table}_history`);
      for (const index of t.indexes) await q.query(`ALTER INDEX ${index} RENAME TO ${index}_history`);
      for (const name of t.constraints)
        await q.query(`ALTER TABLE ${t.table}_history RENAME CONSTRAINT ${name} TO ${name}_history`);
      await q.query(`CREATE TABLE ${t.table} (${t.columns}) PARTITION BY RANGE (${t.key})`);
      for (const statement of t.create) await q.query(statement);
      await q.query(`ALTER TABLE ${t.table} ATTACH PARTITION ${t.table}_history DEFAULT`);
      progress.add(1);
    }
    await q.query(`ALTER SEQUENCE notifications_seq_seq OWNED BY notifications.seq`);
    progress.end();

    // What the service made: one row per partition window, and when retention saw all of it final.
    await q.query(`
      CREATE TABLE herald_partitions (
        suffix     text PRIMARY KEY,
        starts_at  timestamptz NOT NULL UNIQUE,
        ends_at    timestamptz NOT NULL,
        final_at   timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (ends_at > starts_at)
      )`);

    await q.query(PUBLISH_BROADCAST);
    await q.query(SETTLE);
  }

  async down(): Promise<void> {
    // A partitioned record is not turned back into single tables: restore the backup taken before the
    // upgrade (docs/deployment.md, "Upgrading").
    throw new Error('RetentionPartitions cannot be reverted; restore the pre-upgrade backup');
  }
}

/**
 * `herald_publish_broadcast` of BroadcastStreams, its key now claimed in `idempotency_keys` first (before the
 * head's lock, so nothing is given back): a key already taken stores nothing.
 */
const PUBLISH_BROADCAST = `
  CREATE OR REPLACE FUNCTION herald_publish_broadcast(p_id uuid, p_publisher text, p_key text, p_hash text,
                                                      p_audience jsonb, p_topic text, p_event text, p_payload jsonb,
                                                      p_ttl integer)
  RETURNS TABLE (id uuid, seq bigint, event text, payload jsonb, topic text, created_at timestamptz,
                 expires_at timestamptz, recipients integer, stream_id bigint, stream_offset bigint)
  LANGUAGE plpgsql AS $$
  #variable_conflict use_column
  DECLARE s bigint; o bigint; n integer := 0;
  BEGIN
    IF p_key IS NOT NULL THEN
      INSERT INTO idempotency_keys (publisher_id, idempotency_key, notification_id) VALUES (p_publisher, p_key, p_id)
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN RETURN; END IF;
    END IF;
    IF p_topic IS NULL THEN
      UPDATE streams x SET head = x.head + 1 WHERE x.id = 1 RETURNING x.id, x.head INTO s, o;
    ELSE
      UPDATE streams x SET head = x.head + 1 WHERE x.topic = p_topic RETURNING x.id, x.head INTO s, o;
    END IF;
    IF s IS NOT NULL THEN
      SELECT count(*) INTO n FROM cursors c
       WHERE c.stream_id = s AND c.from_offset < o AND (c.until_offset IS NULL OR c.until_offset >= o);
    END IF;
    RETURN QUERY
      INSERT INTO notifications AS x
        (id, publisher_id, idempotency_key, request_hash, audience, topic, event, payload, ttl_seconds,
         expires_at, recipients, stream_id, stream_offset)
      VALUES (p_id, p_publisher, p_key, p_hash, p_audience, p_topic, p_event, p_payload, p_ttl,
              now() + p_ttl * interval '1 second', n, s, o)
      RETURNING x.id, x.seq, x.event, x.payload, x.topic, x.created_at, x.expires_at, x.recipients,
                x.stream_id, x.stream_offset;
  END $$`;

/**
 * `herald_settle` of BroadcastStreams, which also passes an offset retention removed: at or below the
 * stream's head (so published and committed) and no longer stored. Such an offset was final before its
 * partition went.
 */
const SETTLE = `
  CREATE OR REPLACE FUNCTION herald_settle(p_stream bigint, p_until bigint, p_through bigint, p_above bigint[],
                                           p_offsets bigint[], OUT through bigint, OUT above bigint[])
  LANGUAGE plpgsql AS $$
  DECLARE s bigint[]; x_expires timestamptz;
  BEGIN
    s := ARRAY(SELECT DISTINCT o FROM unnest(p_above || p_offsets) AS o WHERE o > p_through ORDER BY o);
    through := p_through;
    LOOP
      EXIT WHEN p_until IS NOT NULL AND through >= p_until;
      IF cardinality(s) > 0 AND s[1] = through + 1 THEN
        through := through + 1;
        s := s[2:];
        CONTINUE;
      END IF;
      -- The head first: a publish it shows committed is visible to the next statement's snapshot.
      EXIT WHEN NOT EXISTS (SELECT 1 FROM streams h WHERE h.id = p_stream AND h.head >= through + 1);
      SELECT x.expires_at INTO x_expires FROM notifications x
       WHERE x.stream_id = p_stream AND x.stream_offset = through + 1;
      EXIT WHEN FOUND AND x_expires > now();
      through := through + 1;
    END LOOP;
    above := s;
  END $$`;
