import { DataSource, EntityManager } from 'typeorm';
import { idBoundAt } from './notification-id';
import { query } from './sql';

/** The tables partitioned by notification id (migration RetentionPartitions), and their key column. */
export const PARTITIONED = [
  { table: 'notifications', key: 'id' },
  { table: 'deliveries', key: 'notification_id' },
  { table: 'broadcast_acks', key: 'notification_id' },
] as const;

/** Key of the advisory lock under which one replica at a time changes the partitions. */
const RETENTION_LOCK_KEY = 0x6865_7274; // "hert"

/**
 * How long a partition change waits for a table lock before giving up until the next run. Attaching and
 * dropping lock the partitioned table, and every statement on it queues behind a lock request that waits:
 * this bounds that stall (a long admin query holding the table makes retention wait, not publishing).
 */
const LOCK_TIMEOUT = '300ms';

const SUFFIX = /^p\d{8}t\d{6}(\d{3})?$/;

export interface PartitionRow {
  suffix: string;
  startsAt: Date;
  endsAt: Date;
  finalAt: Date | null;
}

/**
 * An unexpired notification of `x`'s stream offsets that cursor `c` is a member of and has not settled: a
 * delivery still to come. (A stream notification's delivery made a row is settled on its cursor and open on
 * its row.)
 */
const UNSETTLED_OFFSET = (table: string): string => `
  SELECT 1 FROM ${table} x
   WHERE x.stream_id = c.stream_id AND x.stream_offset > greatest(c.settled_through, c.from_offset)
     AND (c.until_offset IS NULL OR x.stream_offset <= c.until_offset)
     AND x.expires_at > now() AND NOT x.stream_offset = ANY (c.settled_above)
   LIMIT 1`;

/**
 * What retention does to PostgreSQL (ADR 0020): the partitions of the record, made ahead and dropped whole;
 * the history (the DEFAULT partitions: rows from before partitioning) emptied in bounded batches; expired
 * idempotency keys; users long gone, when that is on. Each change to the partitions runs in its own
 * transaction under an advisory lock, so replicas take turns, and waits at most LOCK_TIMEOUT for a table.
 */
export class RetentionRepository {
  constructor(private readonly dataSource: DataSource) {}

  async partitions(): Promise<PartitionRow[]> {
    const rows = await query<{ suffix: string; starts_at: Date; ends_at: Date; final_at: Date | null }>(
      this.dataSource,
      `SELECT suffix, starts_at, ends_at, final_at FROM herald_partitions ORDER BY starts_at`,
    );
    return rows.map((r) => ({ suffix: r.suffix, startsAt: r.starts_at, endsAt: r.ends_at, finalAt: r.final_at }));
  }

  /**
   * Makes the partitions of the window [startsAt, endsAt): empty tables with the window's range as a CHECK
   * (so attaching them reads nothing), given the rows of that range the history holds (a clock ahead, or a
   * pre-upgrade id that falls in it), then attached. False when another replica holds the lock, or a
   * partition of the window, or one overlapping it, exists.
   */
  async makePartition(suffix: string, startsAt: number, endsAt: number): Promise<boolean> {
    checkSuffix(suffix);
    const lo = idBoundAt(startsAt);
    const hi = idBoundAt(endsAt);
    const made = await this.locked(async (em) => {
      const [overlap] = await query<{ n: number }>(
        em,
        `SELECT count(*)::int AS n FROM herald_partitions WHERE starts_at < $2 AND ends_at > $1`,
        [new Date(startsAt), new Date(endsAt)],
      );
      if ((overlap?.n ?? 0) > 0) return false;
      for (const { table, key } of PARTITIONED) {
        const part = `${table}_${suffix}`;
        await em.query(`CREATE TABLE ${part} (LIKE ${table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
        await em.query(
          `ALTER TABLE ${part} ADD CONSTRAINT ${part}_range CHECK (${key} >= '${lo}' AND ${key} < '${hi}')`,
        );
        await em.query(
          `WITH moved AS (DELETE FROM ${table}_history WHERE ${key} >= $1 AND ${key} < $2 RETURNING *)
           INSERT INTO ${part} SELECT * FROM moved`,
          [lo, hi],
        );
        await em.query(`ALTER TABLE ${table} ATTACH PARTITION ${part} FOR VALUES FROM ('${lo}') TO ('${hi}')`);
      }
      await em.query(`INSERT INTO herald_partitions (suffix, starts_at, ends_at) VALUES ($1, $2, $3)`, [
        suffix,
        new Date(startsAt),
        new Date(endsAt),
      ]);
      return true;
    });
    return made ?? false;
  }

  /**
   * Whether every notification of the partition is final: none unexpired with a delivery still open, on a
   * row or on a stream's cursor. Recorded (`final_at`) the first time it holds: nothing final opens again.
   */
  async markFinal(suffix: string): Promise<boolean> {
    checkSuffix(suffix);
    const [row] = await query<{ final: boolean }>(
      this.dataSource,
      `SELECT NOT EXISTS (SELECT 1 FROM deliveries_${suffix}
                           WHERE status IN ('pending', 'sent') AND expires_at > now())
          AND NOT EXISTS (
                SELECT 1
                  FROM (SELECT DISTINCT stream_id FROM notifications_${suffix}
                         WHERE stream_id IS NOT NULL AND expires_at > now()) s
                  JOIN cursors c ON c.stream_id = s.stream_id
                 WHERE EXISTS (${UNSETTLED_OFFSET(`notifications_${suffix}`)})) AS final`,
    );
    if (!row?.final) return false;
    await query(
      this.dataSource,
      `UPDATE herald_partitions SET final_at = now() WHERE suffix = $1 AND final_at IS NULL`,
      [suffix],
    );
    return true;
  }

  /**
   * Drops the partition's tables, and the idempotency keys and inbox states of its notifications. Returns its notifications
   * (PostgreSQL's estimate, from the last ANALYZE), or null when another replica holds the lock.
   */
  async dropPartition(suffix: string): Promise<number | null> {
    checkSuffix(suffix);
    return this.locked(async (em) => {
      const [window] = await query<{ starts_at: Date; ends_at: Date; notifications: number }>(
        em,
        `SELECT starts_at, ends_at,
                (SELECT greatest(reltuples, 0)::int FROM pg_class WHERE relname = $2) AS notifications
           FROM herald_partitions WHERE suffix = $1`,
        [suffix, `notifications_${suffix}`],
      );
      if (!window) return null;
      const range = [idBoundAt(window.starts_at.getTime()), idBoundAt(window.ends_at.getTime())];
      await em.query(`DELETE FROM idempotency_keys WHERE notification_id >= $1 AND notification_id < $2`, range);
      await em.query(`DELETE FROM inbox_states WHERE notification_id >= $1 AND notification_id < $2`, range);
      await em.query(`DROP TABLE ${PARTITIONED.map(({ table }) => `${table}_${suffix}`).join(', ')}`);
      await em.query(`DELETE FROM herald_partitions WHERE suffix = $1`, [suffix]);
      return window.notifications;
    });
  }

  /**
   * Up to `limit` notifications of the history whose TTL ended `retentionMs` ago and published more than
   * `inboxMs` ago, removed with their rows, journal, idempotency keys and inbox states. (The history records
   * no time a notification was last acked: it leaves by its TTL.) Returns how many.
   */
  async purgeHistory(retentionMs: number, inboxMs: number, limit: number): Promise<number> {
    const [row] = await query<{ n: number }>(
      this.dataSource,
      `WITH gone AS (
         DELETE FROM notifications_history WHERE id = ANY (ARRAY(
           SELECT id FROM notifications_history
            WHERE created_at <= now() - $1 * interval '1 millisecond'
              AND expires_at <= now() - $1 * interval '1 millisecond'
              AND created_at <= now() - $3 * interval '1 millisecond'
            ORDER BY created_at LIMIT $2))
         RETURNING id),
       d AS (DELETE FROM deliveries_history WHERE notification_id IN (SELECT id FROM gone)),
       s AS (DELETE FROM inbox_states WHERE notification_id IN (SELECT id FROM gone)),
       b AS (DELETE FROM broadcast_acks_history WHERE notification_id IN (SELECT id FROM gone)),
       k AS (DELETE FROM idempotency_keys WHERE notification_id IN (SELECT id FROM gone))
       SELECT count(*)::int AS n FROM gone`,
      [retentionMs, limit, inboxMs],
    );
    return row?.n ?? 0;
  }

  /** The history's notifications (PostgreSQL's estimate). */
  async historySize(): Promise<number> {
    const [row] = await query<{ n: number }>(
      this.dataSource,
      `SELECT greatest(reltuples, 0)::bigint::int AS n FROM pg_class WHERE relname = 'notifications_history'`,
    );
    return row?.n ?? 0;
  }

  /** Up to `limit` idempotency keys older than `windowMs`, deleted. Returns how many. */
  async purgeIdempotencyKeys(windowMs: number, limit: number): Promise<number> {
    const [row] = await query<{ n: number }>(
      this.dataSource,
      `WITH gone AS (
         DELETE FROM idempotency_keys WHERE (publisher_id, idempotency_key) IN (
           SELECT publisher_id, idempotency_key FROM idempotency_keys
            WHERE created_at < now() - $1 * interval '1 millisecond' ORDER BY created_at LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [windowMs, limit],
    );
    return row?.n ?? 0;
  }

  /**
   * Up to `limit` users not seen for `afterMs`, with no topic subscription, no open delivery row and no
   * cursor with an unexpired offset unsettled, and not `online` (a connection holds them in Redis's
   * presence), removed with their cursors. A user who connects meanwhile holds the row (its arrival updates
   * it) and is skipped, or waits and comes back as a new user. Returns how many.
   */
  async purgeUsers(
    afterMs: number,
    limit: number,
    online: (userIds: string[]) => Promise<Set<string>>,
  ): Promise<number> {
    return this.dataSource.transaction(async (em) => {
      const candidates = await query<{ id: string }>(
        em,
        `SELECT u.id FROM users u
          WHERE u.last_seen_at < now() - $1 * interval '1 millisecond'
            AND NOT EXISTS (SELECT 1 FROM topic_subscriptions t WHERE t.user_id = u.id)
            AND NOT EXISTS (SELECT 1 FROM deliveries d
                             WHERE d.user_id = u.id AND d.status IN ('pending', 'sent') AND d.expires_at > now())
            AND NOT EXISTS (SELECT 1 FROM cursors c
                             WHERE c.user_id = u.id AND EXISTS (${UNSETTLED_OFFSET('notifications')}))
          ORDER BY u.last_seen_at LIMIT $2
          FOR UPDATE SKIP LOCKED`,
        [afterMs, limit],
      );
      if (candidates.length === 0) return 0;
      const present = await online(candidates.map((c) => c.id));
      const gone = candidates.map((c) => c.id).filter((id) => !present.has(id));
      await em.query(`DELETE FROM cursors WHERE user_id = ANY ($1::text[])`, [gone]);
      await em.query(`DELETE FROM inbox_floors WHERE user_id = ANY ($1::text[])`, [gone]);
      await em.query(`DELETE FROM inbox_intervals WHERE user_id = ANY ($1::text[])`, [gone]);
      await em.query(`DELETE FROM users WHERE id = ANY ($1::text[])`, [gone]);
      return gone.length;
    });
  }

  /** `work` in a transaction holding the retention lock, or null when another replica holds it. */
  private async locked<T>(work: (em: EntityManager) => Promise<T>): Promise<T | null> {
    return this.dataSource.transaction(async (em) => {
      const [lock] = await query<{ got: boolean }>(em, `SELECT pg_try_advisory_xact_lock($1) AS got`, [
        RETENTION_LOCK_KEY,
      ]);
      if (!lock?.got) return null;
      await em.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
      return work(em);
    });
  }
}

function checkSuffix(suffix: string): void {
  if (!SUFFIX.test(suffix)) throw new Error(`not a partition suffix: ${suffix}`);
}
