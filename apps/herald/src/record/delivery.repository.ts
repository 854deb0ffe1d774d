import type { DeliveryStatus } from '@herald/protocol';
import { DataSource } from 'typeorm';
import { AckResult, SentDelivery } from './notification.types';
import { REPLAYED_AT } from './replay.repository';
import { prepared } from './sql';

/** One delivery's key: the batch statements below match their input to their output by it. */
export function deliveryKey(notificationId: string, userId: string): string {
  return `${notificationId}/${userId}`;
}

/**
 * Each (notification, user) once, sorted by key: the statements below lock rows in the order of their
 * input, so two batches never wait on each other in a cycle.
 */
function inKeyOrder<T extends { notificationId: string; userId: string }>(items: T[]): T[] {
  const byKey = new Map<string, T>();
  for (const item of items) {
    const key = deliveryKey(item.notificationId, item.userId);
    if (!byKey.has(key)) byKey.set(key, item);
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, item]) => item);
}

/**
 * What an ack writes on the delivery `d` (its target row `t` carries `replayed_at`): acked, or expired past
 * its TTL; and a send not recorded yet is recorded with it (one more attempt, its time), so an acked
 * delivery reads the same however it was sent. That is a replay's send, at the replay's time; or, on a
 * `pending` delivery no replay sent, the first live send or a broadcast's send, which leave before they are
 * recorded (DeliveryService.sendThenRecord, deliverStream), at the row's `updated_at`: the row's last write
 * came just before that send was routed (the publish's insert, or the sweep's `postpone` before it routes
 * the delivery again).
 */
const ACK_SET = `status = CASE WHEN d.expires_at > now() THEN 'acked' ELSE 'expired' END,
              acked_at = CASE WHEN d.expires_at > now() THEN now() ELSE d.acked_at END,
              attempts = CASE WHEN t.replayed_at > COALESCE(d.last_sent_at, '-infinity') OR d.status = 'pending'
                              THEN d.attempts + 1 ELSE d.attempts END,
              first_sent_at = COALESCE(d.first_sent_at, t.replayed_at,
                                       CASE WHEN d.status = 'pending' THEN d.updated_at END),
              last_sent_at = COALESCE(GREATEST(d.last_sent_at, t.replayed_at),
                                      CASE WHEN d.status = 'pending' THEN d.updated_at END),
              next_attempt_at = NULL, updated_at = now()`;

/**
 * Where a delivery's send and ack are recorded: the sent-marks of live sends and resends, and the acks. Each
 * transition is conditional on the state it expects, so a duplicate bus message, a second replica doing the
 * same work or a repeated ack changes nothing. (The replay's statements are ReplayRepository's; what a
 * check and the sweep do, RedeliveryRepository's.)
 *
 * Statements that touch many deliveries by key find each row through its primary key (a LATERAL lookup
 * per key) and update it by its ctid and partition (`tableoid`: a ctid names a row only within its partition):
 * whatever the planner believes of the table's size. Each also names its notification ids as a list
 * (`notification_id = ANY ($1)`), which the planner prunes partitions by (ADR 0020): without it, the UPDATE
 * spanned every partition, a TID scan of the batch's ctids in each, so an ack cost more with every window
 * kept. Joined as
 * tables, a batch of 500 acks got a hash join over a scan of every delivery whenever the statistics were
 * behind a fast-growing table (a fresh install, a burst of broadcasts).
 */
export class DeliveryRepository {
  /**
   * `ackSource`: the ack pool (ADR 0002), which writes acks and sent-marks (and reads a delivery's state for
   * them), with asynchronous commits, where a commit lost in a crash is only a redelivery. Everything else,
   * publishes and the send records of broadcasts and replays among them, commits synchronously through the
   * main pool.
   */
  constructor(private readonly ackSource: DataSource) {}

  /**
   * Marks the open, unexpired deliveries of `notificationId` to `userIds` as
   * sent for `attempt`, and returns every such delivery: the caller sends the
   * frame for all of them (several connections of a user may sit on several
   * replicas) but schedules the next check only where `counted` is true.
   *
   * `counted` is read off the locked rows (their attempt was below `attempt`, so
   * the UPDATE moved them), not by joining the UPDATE's output back to them: the
   * planner has no row counts for CTEs, and on a table without fresh statistics
   * it joined the two by nested loop, 5 000 x 5 000 comparisons for a broadcast
   * to 5 000 users (2.5 s instead of 0.1 s).
   */
  async markSent(
    notificationId: string,
    userIds: string[],
    attempt: number,
    nextAttemptAt: Date,
  ): Promise<SentDelivery[]> {
    const rows = await prepared<{ user_id: string; attempt: number; counted: boolean }>(
      this.ackSource,
      `WITH target AS (
         SELECT user_id, attempts FROM deliveries
          WHERE notification_id = $1 AND user_id = ANY($2::text[])
            AND status IN ('pending', 'sent') AND expires_at > now()
          FOR UPDATE),
       upd AS (
         UPDATE deliveries d
            SET status = 'sent', attempts = $3, next_attempt_at = $4,
                first_sent_at = COALESCE(d.first_sent_at, now()), last_sent_at = now(), updated_at = now()
          WHERE d.notification_id = $1
            AND d.user_id = ANY (ARRAY(SELECT user_id FROM target WHERE attempts < $3)))
       SELECT user_id, GREATEST(attempts, $3) AS attempt, attempts < $3 AS counted FROM target`,
      [notificationId, userIds, attempt, nextAttemptAt],
    );
    return rows.map((r) => ({ userId: r.user_id, attempt: r.attempt, counted: r.counted }));
  }

  /**
   * `markSent` for many single-user sends at once, each with its own notification, attempt and check
   * time (sends coalesced over a tick by the delivery service): one statement and one commit. Rows are
   * locked in key order. Answers, in the order of `items`, the delivery when it was open (as `markSent`
   * does for one user) or null when it was not (acked, expired or unknown).
   */
  async markSentMany(
    items: { notificationId: string; userId: string; attempt: number; nextAttemptAt: Date }[],
  ): Promise<(SentDelivery | null)[]> {
    const unique = inKeyOrder(items);
    const rows = await prepared<{ notification_id: string; user_id: string; attempt: number; counted: boolean }>(
      this.ackSource,
      `WITH target AS (
         SELECT d.row_id, d.part, d.notification_id, d.user_id, d.attempts, i.attempt, i.next_attempt_at
           FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[])
                  AS i(notification_id, user_id, attempt, next_attempt_at),
                LATERAL (
                  SELECT x.ctid AS row_id, x.tableoid AS part, x.notification_id, x.user_id, x.attempts FROM deliveries x
                   WHERE x.notification_id = i.notification_id AND x.user_id = i.user_id
                     AND x.notification_id = ANY ($1::uuid[])
                     AND x.status IN ('pending', 'sent') AND x.expires_at > now()
                   FOR UPDATE) d),
       upd AS (
         UPDATE deliveries d
            SET status = 'sent', attempts = t.attempt, next_attempt_at = t.next_attempt_at,
                first_sent_at = COALESCE(d.first_sent_at, now()), last_sent_at = now(), updated_at = now()
           FROM target t
          WHERE d.ctid = ANY (ARRAY(SELECT row_id FROM target)) AND d.ctid = t.row_id AND d.tableoid = t.part
            AND d.notification_id = ANY ($1::uuid[]) AND t.attempts < t.attempt)
       SELECT notification_id::text AS notification_id, user_id, GREATEST(attempts, attempt) AS attempt,
              attempts < attempt AS counted
         FROM target`,
      [
        unique.map((i) => i.notificationId),
        unique.map((i) => i.userId),
        unique.map((i) => i.attempt),
        unique.map((i) => i.nextAttemptAt),
      ],
    );
    const found = new Map(rows.map((r) => [deliveryKey(r.notification_id, r.user_id), r]));
    const seen = new Set<string>();
    return items.map((item) => {
      const key = deliveryKey(item.notificationId, item.userId);
      const row = found.get(key);
      if (!row) return null;
      // The same send twice in one batch: the second moves nothing.
      const counted = row.counted && !seen.has(key);
      seen.add(key);
      return { userId: row.user_id, attempt: row.attempt, counted };
    });
  }

  /**
   * Records a user's ack. Only the user's own delivery can be acked. An ack
   * that comes after the TTL ends the delivery `expired` (even before the
   * sweep got to it); a late ack of a `failed` delivery records `acked`,
   * because the user demonstrably has the notification. A replay's send of
   * it is recorded with the ack (ACK_SET).
   */
  async ack(notificationId: string, userId: string): Promise<AckResult> {
    const updated = await prepared<{
      outcome: 'acked' | 'expired';
      since_publish_ms: number;
      since_sent_ms: number | null;
    }>(
      this.ackSource,
      `WITH t AS (
         SELECT x.ctid AS row_id, x.tableoid AS part, ${REPLAYED_AT} AS replayed_at FROM deliveries x
          WHERE x.notification_id = $1 AND x.user_id = $2 AND x.status IN ('pending', 'sent', 'failed')
          FOR UPDATE)
       UPDATE deliveries d
          SET ${ACK_SET}
         FROM t
        WHERE d.ctid = ANY (ARRAY(SELECT row_id FROM t)) AND d.ctid = t.row_id AND d.tableoid = t.part
          AND d.notification_id = $1
       RETURNING d.status AS outcome,
                 (EXTRACT(EPOCH FROM now() - d.created_at) * 1000)::float8 AS since_publish_ms,
                 (EXTRACT(EPOCH FROM now() - d.last_sent_at) * 1000)::float8 AS since_sent_ms`,
      [notificationId, userId],
    );
    const row0 = updated[0];
    if (row0) {
      return row0.outcome === 'acked'
        ? {
            outcome: 'acked',
            changed: true,
            sincePublishMs: row0.since_publish_ms,
            ...(row0.since_sent_ms !== null ? { sinceSentMs: row0.since_sent_ms } : {}),
          }
        : { outcome: 'expired', changed: true };
    }
    // A separate statement, so it sees what a concurrent ack or expiry committed
    // while the UPDATE above waited for the row.
    const status = await this.statusOf(notificationId, userId);
    if (status === null) return { outcome: 'unknown', changed: false };
    if (status === 'acked') return { outcome: 'duplicate', changed: false };
    if (status === 'expired') return { outcome: 'expired', changed: false };
    // Open again (a concurrent statement moved it): try once more.
    return this.ack(notificationId, userId);
  }

  /** The state of one user's delivery of a notification, or null when there is none. */
  async statusOf(notificationId: string, userId: string): Promise<DeliveryStatus | null> {
    const [row] = await prepared<{ status: DeliveryStatus }>(
      this.ackSource,
      `SELECT status FROM deliveries WHERE notification_id = $1 AND user_id = $2`,
      [notificationId, userId],
    );
    return row?.status ?? null;
  }

  /**
   * Many acks in one statement (acks coalesced over a few milliseconds by AckWriter). Rows are
   * locked in key order, so two batches never wait on each other in a cycle. What the UPDATE did not
   * change (a duplicate, an unknown or expired delivery) is answered one by one by `ack`, as before.
   */
  async ackMany(items: { notificationId: string; userId: string }[]): Promise<AckResult[]> {
    const unique = inKeyOrder(items);
    const rows = await prepared<{
      notification_id: string;
      user_id: string;
      outcome: 'acked' | 'expired';
      since_publish_ms: number;
      since_sent_ms: number | null;
    }>(
      this.ackSource,
      `WITH t AS (
         SELECT d.row_id, d.part, d.replayed_at
           FROM unnest($1::uuid[], $2::text[]) AS a(notification_id, user_id),
                LATERAL (
                  SELECT x.ctid AS row_id, x.tableoid AS part, ${REPLAYED_AT} AS replayed_at FROM deliveries x
                   WHERE x.notification_id = a.notification_id AND x.user_id = a.user_id
                     AND x.notification_id = ANY ($1::uuid[])
                     AND x.status IN ('pending', 'sent', 'failed')
                   FOR UPDATE) d)
       UPDATE deliveries d
          SET ${ACK_SET}
         FROM t
        WHERE d.ctid = ANY (ARRAY(SELECT row_id FROM t)) AND d.ctid = t.row_id AND d.tableoid = t.part
          AND d.notification_id = ANY ($1::uuid[])
       RETURNING d.notification_id::text AS notification_id, d.user_id, d.status AS outcome,
                 (EXTRACT(EPOCH FROM now() - d.created_at) * 1000)::float8 AS since_publish_ms,
                 (EXTRACT(EPOCH FROM now() - d.last_sent_at) * 1000)::float8 AS since_sent_ms`,
      [unique.map((i) => i.notificationId), unique.map((i) => i.userId)],
    );
    const changed = new Map<string, AckResult>();
    for (const row of rows) {
      changed.set(
        deliveryKey(row.notification_id, row.user_id),
        row.outcome === 'acked'
          ? {
              outcome: 'acked',
              changed: true,
              sincePublishMs: row.since_publish_ms,
              ...(row.since_sent_ms !== null ? { sinceSentMs: row.since_sent_ms } : {}),
            }
          : { outcome: 'expired', changed: true },
      );
    }
    // What the UPDATE did not change is read in one statement, not one round trip each: a frame of
    // made-up or already-acked ids costs one more query, whatever its size.
    const unchanged = unique.filter((i) => !changed.has(deliveryKey(i.notificationId, i.userId)));
    const states = new Map<string, string>();
    if (unchanged.length > 0) {
      const rows = await prepared<{ notification_id: string; user_id: string; status: string }>(
        this.ackSource,
        `SELECT d.notification_id::text AS notification_id, d.user_id, d.status
           FROM unnest($1::uuid[], $2::text[]) AS a(notification_id, user_id),
                LATERAL (SELECT x.notification_id, x.user_id, x.status FROM deliveries x
                          WHERE x.notification_id = a.notification_id AND x.user_id = a.user_id) d`,
        [unchanged.map((i) => i.notificationId), unchanged.map((i) => i.userId)],
      );
      for (const row of rows) states.set(deliveryKey(row.notification_id, row.user_id), row.status);
    }
    // The first of several identical acks in the batch gets the change; the others are duplicates.
    const answered = new Set<string>();
    return Promise.all(
      items.map(async (item): Promise<AckResult> => {
        const key = deliveryKey(item.notificationId, item.userId);
        const result = changed.get(key);
        if (result && !answered.has(key)) {
          answered.add(key);
          return result;
        }
        if (result) return { outcome: 'duplicate', changed: false };
        const status = states.get(key);
        if (status === undefined) return { outcome: 'unknown', changed: false };
        if (status === 'acked') return { outcome: 'duplicate', changed: false };
        if (status === 'expired') return { outcome: 'expired', changed: false };
        // Open again (a concurrent statement moved it while the UPDATE ran): one at a time, as `ack` does.
        return this.ack(item.notificationId, item.userId);
      }),
    );
  }
}
