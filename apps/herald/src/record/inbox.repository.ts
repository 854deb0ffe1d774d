import type { InboxAction, InboxItem, JsonValue } from '@herald/protocol';
import { DataSource } from 'typeorm';
import { query } from './sql';

/**
 * Whether the user `$1` had acked the stream notification `x` by the upgrade's epoch `e` (the ack journal
 * names them): what a settled offset at or below the epoch needs for the epoch's rule.
 */
const ACKED_BY_EPOCH = `EXISTS (SELECT 1 FROM broadcast_acks b
                                  WHERE b.notification_id = x.id AND b.acked_at <= e.at AND $1 = ANY (b.user_ids))`;

/**
 * A user's inbox items (ADR 0026), as the record holds them: $1 the user, $2 the lowest id of the window
 * (UUIDv7: ids below it were published before the window, and their partitions are not read), $3 the seq
 * to stay below (a page's cursor), $4 the upgrade's epoch seq. Each with `ended`: at or below the epoch, its
 * delivery had ended by the epoch's time (acked, expired, failed), which the epoch's rule reads; false above
 * it, so the rule never changes with time.
 * - The user's `deliveries` rows, by the three partial indexes (open, acked, ended): user-list notifications
 *   and the broadcasts handed off to a row.
 * - The offsets of their streams' cursors (`(from_offset, until_offset]`), and of the earlier intervals a
 *   resubscribe reset (`inbox_intervals`), that no row of theirs holds.
 */
const ITEMS = `
  e AS MATERIALIZED (SELECT COALESCE((SELECT set_at FROM inbox_epoch LIMIT 1), '-infinity') AS at),
  items AS (
    SELECT d.notification_id AS id, d.seq, d.seq <= $4 AND d.expires_at <= e.at AS ended FROM deliveries d, e
     WHERE d.user_id = $1 AND d.status IN ('pending', 'sent') AND d.notification_id >= $2 AND d.seq < $3
    UNION ALL
    SELECT d.notification_id, d.seq, d.seq <= $4 AND (d.acked_at <= e.at OR d.expires_at <= e.at)
      FROM deliveries d, e
     WHERE d.user_id = $1 AND d.status = 'acked' AND d.notification_id >= $2 AND d.seq < $3
    UNION ALL
    SELECT d.notification_id, d.seq, d.seq <= $4 AND (d.updated_at <= e.at OR d.expires_at <= e.at)
      FROM deliveries d, e
     WHERE d.user_id = $1 AND d.status IN ('expired', 'failed') AND d.notification_id >= $2 AND d.seq < $3
    UNION ALL
    SELECT x.id, x.seq,
           CASE WHEN x.seq > $4 THEN false WHEN x.expires_at <= e.at THEN true
                WHEN x.stream_offset <= c.settled_through OR x.stream_offset = ANY (c.settled_above)
                  THEN ${ACKED_BY_EPOCH}
                ELSE false END
      FROM e, cursors c,
           LATERAL (SELECT x.id, x.seq, x.stream_offset, x.expires_at FROM notifications x
                     WHERE x.stream_id = c.stream_id AND x.stream_offset > c.from_offset
                       AND (c.until_offset IS NULL OR x.stream_offset <= c.until_offset)
                       AND x.id >= $2 AND x.seq < $3) x
     WHERE c.user_id = $1
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = x.id AND d.user_id = $1)
    UNION ALL
    SELECT x.id, x.seq,
           CASE WHEN x.seq > $4 THEN false WHEN x.expires_at <= e.at THEN true ELSE ${ACKED_BY_EPOCH} END
      FROM e, inbox_intervals v,
           LATERAL (SELECT x.id, x.seq, x.expires_at FROM notifications x
                     WHERE x.stream_id = v.stream_id AND x.stream_offset > v.from_offset
                       AND x.stream_offset <= v.until_offset AND x.id >= $2 AND x.seq < $3) x
     WHERE v.user_id = $1
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = x.id AND d.user_id = $1))`;

/**
 * Each item with its notification and its state: read by its state row when that was set after the floor
 * of its stream (or the item is above the floor), else by the floor, else by the upgrade's epoch (`ended`).
 * `seen` follows `read`.
 */
const JUDGED = `${ITEMS},
  judged AS (
    SELECT i.id, i.seq, n.event, n.topic, n.created_at, n.payload, s.archived_at IS NOT NULL AS archived,
           CASE WHEN s.read_set_at IS NOT NULL
                     AND (f.set_at IS NULL OR s.read_set_at > f.set_at OR i.seq > f.read_through_seq)
                  THEN s.read_at IS NOT NULL
                WHEN f.read_through_seq >= i.seq THEN true
                ELSE i.ended END AS read,
           s.seen_at IS NOT NULL AS seen_set
      FROM items i
      JOIN LATERAL (SELECT x.event, x.topic, x.created_at, x.payload, x.stream_id FROM notifications x
                     WHERE x.id = i.id OFFSET 0) n ON true
      LEFT JOIN inbox_states s ON s.notification_id = i.id AND s.user_id = $1
      LEFT JOIN inbox_floors f ON f.user_id = $1 AND f.stream_id = COALESCE(n.stream_id, 0))`;

const UNREAD_COUNT = `WITH ${JUDGED} SELECT count(*)::int AS n FROM judged WHERE NOT read AND NOT archived`;

/** No cursor: every seq is below it. */
const NO_CURSOR = '9223372036854775807';

/** When a change is made: one clock reading per statement, as the inserted row's `updated_at`. */
const AT = 'EXCLUDED.updated_at';

/** The state row's `seen_at, read_at, read_set_at, archived_at` on insert, and its update on conflict. */
const ACTION_SQL: Record<InboxAction, { insert: string; update: string }> = {
  seen: { insert: 't, NULL, NULL, NULL', update: `seen_at = COALESCE(s.seen_at, ${AT})` },
  unseen: { insert: 'NULL, NULL, t, NULL', update: `seen_at = NULL, read_at = NULL, read_set_at = ${AT}` },
  read: {
    insert: 't, t, t, NULL',
    update: `seen_at = COALESCE(s.seen_at, ${AT}), read_at = COALESCE(s.read_at, ${AT}), read_set_at = ${AT}`,
  },
  unread: {
    insert: 't, NULL, t, NULL',
    update: `seen_at = COALESCE(s.seen_at, ${AT}), read_at = NULL, read_set_at = ${AT}`,
  },
  archive: { insert: 'NULL, NULL, NULL, t', update: `archived_at = COALESCE(s.archived_at, ${AT})` },
  unarchive: { insert: 'NULL, NULL, NULL, NULL', update: 'archived_at = NULL' },
};

export interface InboxListQuery {
  limit: number;
  cursor?: number;
  unread?: boolean;
  archived?: boolean;
  event?: string;
}

interface JudgedRow {
  id: string;
  seq: string;
  event: string;
  topic: string | null;
  created_at: Date;
  payload: JsonValue;
  read: boolean;
  seen_set: boolean;
  archived: boolean;
}

/**
 * The inbox's statements (ADR 0026): the list and the unread count, read from the record with the state
 * rows and floors over it; the state changes and "mark all read". The window's lowest id and the epoch are
 * the caller's (InboxService).
 */
export class InboxRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** The upgrade's epoch: items at or below it whose delivery had ended count as read. */
  async epoch(): Promise<number> {
    const [row] = await query<{ seq: string }>(this.dataSource, `SELECT seq FROM inbox_epoch LIMIT 1`);
    return Number(row?.seq ?? 0);
  }

  /** A page of `userId`'s items, newest first, and whether there are more. */
  async list(
    userId: string,
    windowId: string,
    epoch: number,
    q: InboxListQuery,
  ): Promise<{ items: InboxItem[]; more: boolean }> {
    const rows = await query<JudgedRow>(
      this.dataSource,
      `WITH ${JUDGED}
       SELECT id::text, seq, event, topic, created_at, payload, read, seen_set, archived FROM judged
        WHERE archived = $5 AND ($6::boolean IS NULL OR read = NOT $6) AND ($7::text IS NULL OR event = $7)
        ORDER BY seq DESC LIMIT $8`,
      [
        userId,
        windowId,
        q.cursor ?? NO_CURSOR,
        epoch,
        q.archived ?? false,
        q.unread ?? null,
        q.event ?? null,
        q.limit + 1,
      ],
    );
    return {
      items: rows.slice(0, q.limit).map((r) => ({
        id: r.id,
        seq: Number(r.seq),
        event: r.event,
        payload: r.payload,
        ...(r.topic !== null ? { topic: r.topic } : {}),
        timestamp: r.created_at.toISOString(),
        seen: r.read || r.seen_set,
        read: r.read,
        archived: r.archived,
      })),
      more: rows.length > q.limit,
    };
  }

  /** Items neither read nor archived. */
  async unreadCount(userId: string, windowId: string, epoch: number): Promise<number> {
    const [row] = await query<{ n: number }>(this.dataSource, UNREAD_COUNT, [userId, windowId, NO_CURSOR, epoch]);
    return row?.n ?? 0;
  }

  /**
   * Applies `action` to those of `ids` (distinct, lowered UUIDs) that are `userId`'s items in the window,
   * in one statement; answers the ids that are not (no such notification, another user's, or older than
   * the window).
   */
  async apply(userId: string, windowId: string, action: InboxAction, ids: string[]): Promise<string[]> {
    const { insert, update } = ACTION_SQL[action];
    const rows = await query<{ id: string }>(
      this.dataSource,
      `WITH asked AS (SELECT DISTINCT id FROM unnest($2::uuid[]) AS a(id)),
       mine AS (
         SELECT a.id FROM asked a
          WHERE a.id >= $3
            AND (EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = a.id AND d.user_id = $1)
                 OR EXISTS (SELECT 1 FROM notifications x JOIN cursors c ON c.user_id = $1 AND c.stream_id = x.stream_id
                             WHERE x.id = a.id AND x.stream_offset > c.from_offset
                               AND (c.until_offset IS NULL OR x.stream_offset <= c.until_offset))
                 OR EXISTS (SELECT 1 FROM notifications x
                              JOIN inbox_intervals v ON v.user_id = $1 AND v.stream_id = x.stream_id
                             WHERE x.id = a.id AND x.stream_offset > v.from_offset
                               AND x.stream_offset <= v.until_offset))),
       written AS (
         INSERT INTO inbox_states AS s (notification_id, user_id, seen_at, read_at, read_set_at, archived_at, updated_at)
         SELECT m.id, $1, ${insert}, t FROM mine m, (SELECT clock_timestamp() AS t) c
         ORDER BY m.id
         ON CONFLICT (notification_id, user_id) DO UPDATE SET ${update}, updated_at = ${AT})
       SELECT a.id::text FROM asked a WHERE a.id NOT IN (SELECT id FROM mine)`,
      [userId, ids, windowId],
    );
    return rows.map((r) => r.id);
  }

  /**
   * "Mark all read": the floors of the user's streams (`topic`'s only, when given; else every stream of
   * theirs and 0, their direct notifications) set to the highest seq of their items now, at this moment.
   * Answers that seq (0: nothing to read).
   */
  async readAll(userId: string, windowId: string, topic: string | null): Promise<number> {
    const [row] = await query<{ through: string | null }>(
      this.dataSource,
      `WITH scope AS (
         SELECT c.stream_id FROM cursors c LEFT JOIN streams s ON s.id = c.stream_id
          WHERE c.user_id = $1 AND ($5::text IS NULL OR s.topic = $5)
         UNION SELECT 0 WHERE $5::text IS NULL),
       ${ITEMS},
       through AS (
         SELECT max(i.seq) AS seq FROM items i
          WHERE $5::text IS NULL
             OR EXISTS (SELECT 1 FROM notifications x WHERE x.id = i.id AND x.topic = $5)),
       floors AS (
         INSERT INTO inbox_floors (user_id, stream_id, read_through_seq, set_at)
         SELECT $1, scope.stream_id, through.seq, clock_timestamp() FROM scope, through
          WHERE through.seq IS NOT NULL
         ORDER BY scope.stream_id
         ON CONFLICT (user_id, stream_id) DO UPDATE
           SET read_through_seq = GREATEST(inbox_floors.read_through_seq, EXCLUDED.read_through_seq),
               set_at = EXCLUDED.set_at)
       SELECT seq AS through FROM through`,
      [userId, windowId, NO_CURSOR, 0, topic],
    );
    return Number(row?.through ?? 0);
  }
}
