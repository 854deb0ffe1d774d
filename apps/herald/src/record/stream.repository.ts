import { DataSource } from 'typeorm';
import { prepared } from './sql';
import type { StoredNotification } from './notification.types';
import { toStoredNotification } from './notification.repository';

/** What an ack of a stream notification found (ADR 0007). */
export type StreamAckOutcome =
  /** Settled by this ack, and journaled. */
  | 'acked'
  /** Settled already (an earlier ack, or another device's). */
  | 'duplicate'
  /** Past the TTL: not journaled. */
  | 'expired'
  /** Handed off to a deliveries row: that row takes the ack. */
  | 'row'
  /** Not a stream notification of this user's (or no notification at all). */
  | 'unknown';

export interface StreamAck {
  outcome: StreamAckOutcome;
  /** For `acked`: milliseconds from publish to this ack. */
  sincePublishMs?: number;
}

/**
 * The stream side of the delivery record (ADR 0007): a topic or everyone broadcast is one notification with
 * an offset in its stream; each recipient's delivery is virtual (its cursor covers the offset and has not
 * settled it) until it is acked (the cursor settles it and the journal names the user) or handed off to a
 * `deliveries` row (unacked at its check). Nothing here writes per recipient but the ack's cursor update.
 */
export class StreamRepository {
  /** `ackSource`: the ack pool (asynchronous commits, generic plans; see DeliveryRepository). */
  constructor(
    private readonly dataSource: DataSource,
    private readonly ackSource: DataSource = dataSource,
  ) {}

  /**
   * A broadcast's send to the users of one replica: which of `userIds` have it open (their cursor covers the
   * offset and has not settled it). Reads only: the replica checks the send itself when its ack timeout runs
   * out (RedeliveryScheduler), and hands off to rows only what is unacked then (`handOff`).
   */
  async openAmong(streamId: number, offset: number, userIds: string[]): Promise<string[]> {
    const rows = await prepared<{ user_id: string }>(
      this.dataSource,
      `SELECT c.user_id
         FROM unnest($1::text[]) AS u(user_id),
              LATERAL (
                SELECT x.user_id, x.from_offset, x.until_offset, x.settled_through, x.settled_above FROM cursors x
                 WHERE x.user_id = u.user_id AND x.stream_id = $2 OFFSET 0) c
        WHERE c.from_offset < $3 AND (c.until_offset IS NULL OR c.until_offset >= $3)
          AND c.settled_through < $3 AND NOT $3 = ANY (c.settled_above)`,
      [userIds, streamId, offset],
    );
    return rows.map((r) => r.user_id);
  }

  /**
   * What a broadcast sent at `sentAt` to `userIds` is still open for: each such cursor settles the offset and
   * a `deliveries` row takes over (sent once at `sentAt`, due now), in one statement. Answers how many.
   */
  async handOff(notificationId: string, userIds: string[], sentAt: Date): Promise<number> {
    const [row] = await prepared<{ n: number }>(this.dataSource, `SELECT herald_hand_off($1, $2, $3) AS n`, [
      notificationId,
      userIds,
      sentAt,
    ]);
    return row?.n ?? 0;
  }

  /**
   * Acks of stream notifications, many in one statement: each user's cursor of each stream is locked once
   * (in key order) and moved once, with every offset acked in the batch; the journal gets one row per
   * notification naming the users whose ack settled it. An offset already settled that a deliveries row
   * holds (handed off) is answered `row`, for the row path to ack. Answers in the order of `items`.
   */
  async ackMany(items: { notificationId: string; userId: string }[]): Promise<StreamAck[]> {
    if (items.length === 0) return [];
    const rows = await prepared<{
      notification_id: string;
      user_id: string;
      outcome: StreamAckOutcome;
      since_publish_ms: number | null;
    }>(
      this.ackSource,
      `WITH a AS MATERIALIZED (
         SELECT DISTINCT i.user_id, n.id, n.stream_id, n.stream_offset, n.expires_at > now() AS live, n.created_at
           FROM unnest($1::uuid[], $2::text[]) AS i(notification_id, user_id),
                LATERAL (SELECT x.id, x.stream_id, x.stream_offset, x.expires_at, x.created_at FROM notifications x
                          WHERE x.id = i.notification_id OFFSET 0) n
          WHERE n.stream_id IS NOT NULL),
       c AS MATERIALIZED (
         SELECT l.* FROM (SELECT user_id, stream_id FROM a GROUP BY user_id, stream_id
                            ORDER BY user_id COLLATE "C", stream_id) k,
                LATERAL (SELECT x.user_id, x.stream_id, x.from_offset, x.until_offset, x.settled_through,
                                x.settled_above
                           FROM cursors x WHERE x.user_id = k.user_id AND x.stream_id = k.stream_id
                          FOR UPDATE) l),
       judged AS MATERIALIZED (
         SELECT a.id, a.user_id, a.stream_id, a.stream_offset, a.created_at,
                CASE WHEN c.user_id IS NULL OR a.stream_offset <= c.from_offset
                          OR (c.until_offset IS NOT NULL AND a.stream_offset > c.until_offset) THEN 'unknown'
                     WHEN a.stream_offset <= c.settled_through OR a.stream_offset = ANY (c.settled_above) THEN
                       CASE WHEN EXISTS (SELECT 1 FROM deliveries d
                                          WHERE d.notification_id = a.id AND d.user_id = a.user_id)
                            THEN 'row' WHEN a.live THEN 'duplicate' ELSE 'expired' END
                     WHEN NOT a.live THEN 'expired'
                     ELSE 'acked' END AS outcome
           FROM a LEFT JOIN c ON c.user_id = a.user_id AND c.stream_id = a.stream_id),
       -- The usual case needs no function call: the acked offsets run on from the floor with nothing settled
       -- above it, so the floor moves to the last of them. Anything else goes through herald_settle.
       g AS MATERIALIZED (
         SELECT j.user_id, j.stream_id, array_agg(j.stream_offset) AS offsets, min(j.stream_offset) AS low,
                max(j.stream_offset) AS high, count(*) AS n
           FROM judged j WHERE j.outcome = 'acked' GROUP BY j.user_id, j.stream_id),
       placed AS (
         SELECT g.user_id, g.stream_id, p.through, p.above
           FROM g JOIN c ON c.user_id = g.user_id AND c.stream_id = g.stream_id,
                LATERAL (
                  SELECT g.high AS through, '{}'::bigint[] AS above
                   WHERE cardinality(c.settled_above) = 0 AND g.low = c.settled_through + 1
                     AND g.high - g.low + 1 = g.n
                  UNION ALL
                  SELECT s.through, s.above
                    FROM herald_settle(c.stream_id, c.until_offset, c.settled_through, c.settled_above, g.offsets) s
                   WHERE NOT (cardinality(c.settled_above) = 0 AND g.low = c.settled_through + 1
                              AND g.high - g.low + 1 = g.n)) p),
       moved AS (
         UPDATE cursors x SET settled_through = p.through, settled_above = p.above, updated_at = now()
           FROM placed p
          WHERE x.user_id = p.user_id AND x.stream_id = p.stream_id),
       journal AS (
         INSERT INTO broadcast_acks (notification_id, user_ids)
         SELECT id, array_agg(user_id) FROM judged WHERE outcome = 'acked' GROUP BY id)
       SELECT id::text AS notification_id, user_id, outcome,
              CASE WHEN outcome = 'acked' THEN (EXTRACT(EPOCH FROM now() - created_at) * 1000)::float8 END
                AS since_publish_ms
         FROM judged`,
      [items.map((i) => i.notificationId), items.map((i) => i.userId)],
    );
    const found = new Map(rows.map((r) => [`${r.notification_id}/${r.user_id}`, r]));
    const answered = new Set<string>();
    return items.map((item) => {
      const key = `${item.notificationId}/${item.userId}`;
      const row = found.get(key);
      if (!row) return { outcome: 'unknown' };
      // The same ack twice in one batch: the first settles it, the second is a duplicate.
      if (row.outcome === 'acked' && answered.has(key)) return { outcome: 'duplicate' };
      answered.add(key);
      return row.outcome === 'acked'
        ? { outcome: 'acked', ...(row.since_publish_ms !== null ? { sincePublishMs: row.since_publish_ms } : {}) }
        : { outcome: row.outcome };
    });
  }

  /**
   * The notifications of a stream with offsets in (`after`, `through`], in offset order: what a replica
   * missed of it (a bus message lost, or its subscriber away).
   */
  async between(streamId: number, after: number, through: number): Promise<StoredNotification[]> {
    const rows = await prepared<Parameters<typeof toStoredNotification>[0]>(
      this.dataSource,
      `SELECT id, seq, event, payload, topic, created_at, expires_at, stream_id, stream_offset FROM notifications
        WHERE stream_id = $1 AND stream_offset > $2 AND stream_offset <= $3 AND expires_at > now()
        ORDER BY stream_offset`,
      [streamId, after, through],
    );
    return rows.map(toStoredNotification);
  }

  /** Every stream's head: where each stream's offsets stand now. */
  async heads(): Promise<Map<number, number>> {
    const rows = await prepared<{ id: string; head: string }>(this.dataSource, `SELECT id, head FROM streams`);
    return new Map(rows.map((r) => [Number(r.id), Number(r.head)]));
  }
}
