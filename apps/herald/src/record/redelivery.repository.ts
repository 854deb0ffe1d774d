import { DataSource } from 'typeorm';
import { toStoredNotification } from './notification.repository';
import { DueDelivery, StoredNotification } from './notification.types';
import { REPLAYED_AT } from './replay.repository';
import { prepared } from './sql';

/**
 * The end of a check's settlement (a replay's batch, a broadcast's send): each row in `unacked` (its ctid
 * `row_id` in partition `part`, locked, and the `sent_at` of the send that was not recorded) is recorded as sent then and made
 * due now, so the sweep's next step resends, parks or fails it. Yields `upd` with each notification id.
 */
const SETTLE_UNACKED = `upd AS (
         UPDATE deliveries d
            SET status = 'sent', attempts = d.attempts + 1, next_attempt_at = now(),
                first_sent_at = COALESCE(d.first_sent_at, u.sent_at), last_sent_at = u.sent_at, updated_at = now()
           FROM unacked u
          WHERE d.ctid = ANY (ARRAY(SELECT row_id FROM unacked)) AND d.ctid = u.row_id AND d.tableoid = u.part
         RETURNING d.notification_id)`;

/**
 * What happens to a delivery when its ack does not come (RedeliveryService): a check's read and its
 * transitions (fail, park, postpone), the sweep's batches (expire, settle replay checks, find due, park
 * many), and parked deliveries put back on the clock (a presence beat after Redis lost presence). Each
 * transition expects the `attempts` (or the state) it was decided on, so a stale check, an overlapping
 * sweep or a second replica changes nothing.
 */
export class RedeliveryRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * The delivery a redelivery job is about, with its notification. `replayedSince`: a replay sent it after
   * its last recorded send (and has not recorded that yet): the replay's check times it now.
   */
  async findOpen(
    notificationId: string,
    userId: string,
  ): Promise<{
    status: 'pending' | 'sent';
    attempts: number;
    replayedSince: boolean;
    notification: StoredNotification;
  } | null> {
    const rows = await prepared<
      Parameters<typeof toStoredNotification>[0] & {
        status: 'pending' | 'sent';
        attempts: number;
        replayed_since: boolean | null;
      }
    >(
      this.dataSource,
      `SELECT x.status, x.attempts, n.id, n.seq, n.event, n.payload, n.topic, n.created_at, x.expires_at,
              (${REPLAYED_AT}) > COALESCE(x.last_sent_at, '-infinity') AS replayed_since
         FROM deliveries x JOIN notifications n ON n.id = x.notification_id
        WHERE x.notification_id = $1 AND x.user_id = $2 AND x.status IN ('pending', 'sent')`,
      [notificationId, userId],
    );
    const row = rows[0];
    return row
      ? {
          status: row.status,
          attempts: row.attempts,
          replayedSince: row.replayed_since === true,
          notification: toStoredNotification(row),
        }
      : null;
  }

  /** Ends a delivery `failed` if it is still unacked at `attempts`. */
  async markFailed(notificationId: string, userId: string, attempts: number): Promise<boolean> {
    const rows = await prepared<unknown>(
      this.dataSource,
      `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = now()
        WHERE notification_id = $1 AND user_id = $2 AND status = 'sent' AND attempts = $3
       RETURNING 1`,
      [notificationId, userId, attempts],
    );
    return rows.length > 0;
  }

  /** The user is offline: stop timing this delivery; it is replayed on connect. */
  async park(notificationId: string, userId: string, attempts: number): Promise<void> {
    await prepared(
      this.dataSource,
      `UPDATE deliveries SET next_attempt_at = NULL, updated_at = now()
        WHERE notification_id = $1 AND user_id = $2 AND status IN ('pending', 'sent') AND attempts = $3`,
      [notificationId, userId, attempts],
    );
  }

  /**
   * Puts the parked deliveries of these users back on the clock, due now, so the sweep routes them.
   * For users who were connected all along while presence said otherwise (Redis lost it). Returns how many.
   */
  async unparkUsers(userIds: string[]): Promise<number> {
    if (userIds.length === 0) return 0;
    const rows = await prepared<unknown>(
      this.dataSource,
      `UPDATE deliveries SET next_attempt_at = now(), updated_at = now()
        WHERE user_id = ANY($1::text[]) AND status IN ('pending', 'sent') AND next_attempt_at IS NULL
          AND expires_at > now()
       RETURNING 1`,
      [userIds],
    );
    return rows.length;
  }

  /** Parks many deliveries at once (each only at the attempt it was read at); returns how many. */
  async parkMany(items: { notificationId: string; userId: string; attempts: number }[]): Promise<number> {
    if (items.length === 0) return 0;
    const rows = await prepared<unknown>(
      this.dataSource,
      `UPDATE deliveries d SET next_attempt_at = NULL, updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::int[]) AS p(notification_id, user_id, attempts)
        WHERE d.notification_id = p.notification_id AND d.user_id = p.user_id AND d.attempts = p.attempts
          AND d.status IN ('pending', 'sent')
       RETURNING 1`,
      [items.map((i) => i.notificationId), items.map((i) => i.userId), items.map((i) => i.attempts)],
    );
    return rows.length;
  }

  /** Ends deliveries past their TTL; returns the notification id of each (one per delivery). */
  async expireDue(limit: number): Promise<string[]> {
    const rows = await prepared<{ notification_id: string }>(
      this.dataSource,
      `UPDATE deliveries d SET status = 'expired', next_attempt_at = NULL, updated_at = now()
         FROM (SELECT notification_id, user_id FROM deliveries
                WHERE status IN ('pending', 'sent') AND expires_at <= now()
                LIMIT $1 FOR UPDATE SKIP LOCKED) due
        WHERE d.notification_id = due.notification_id AND d.user_id = due.user_id
       RETURNING d.notification_id`,
      [limit],
    );
    return rows.map((r) => r.notification_id);
  }

  /**
   * Takes up to `limit` replay records whose check time has come (each by one sweep only) and deletes them.
   * A delivery of their range that is still open and has had no send recorded since the replay is recorded
   * as sent then (attempts + 1, at the replay's time) and made due now, so the sweep resends it to an online
   * user, parks it for an offline one, or ends it `failed` after the last attempt. Returns how many records
   * were taken, the notification of each delivery put on the clock (one per delivery), and how many of those
   * were a stream's, handed off to a new row (`herald_hand_off_replayed`).
   */
  async settleReplayChecks(limit: number): Promise<{ checks: number; notificationIds: string[]; handedOff: number }> {
    const [row] = await prepared<{ checks: number; notification_ids: string[]; handed_off: number }>(
      this.dataSource,
      `WITH due AS (
         DELETE FROM replay_checks WHERE id = ANY (ARRAY(
           SELECT id FROM replay_checks WHERE check_at <= now() ORDER BY check_at LIMIT $1 FOR UPDATE SKIP LOCKED))
         RETURNING user_id, after_seq, through_seq, resume_after_seq, sent_at),
       unacked AS (
         SELECT DISTINCT ON (d.part, d.row_id) d.row_id, d.part, due.sent_at
           FROM due,
                LATERAL (
                  SELECT x.ctid AS row_id, x.tableoid AS part FROM deliveries x
                   WHERE x.user_id = due.user_id AND x.seq > due.after_seq AND x.seq <= due.through_seq
                     AND (x.status = 'pending' OR (x.status = 'sent' AND x.seq > due.resume_after_seq))
                     AND x.expires_at > now()
                     AND (x.last_sent_at IS NULL OR x.last_sent_at < due.sent_at)
                   FOR UPDATE) d
          ORDER BY d.part, d.row_id, due.sent_at DESC),
       ${SETTLE_UNACKED},
       -- What the batch sent of the user's streams and is still open becomes a row (ADR 0007).
       handed AS (
         SELECT unnest(herald_hand_off_replayed(user_id, after_seq, through_seq, sent_at)) AS notification_id
           FROM due)
       SELECT (SELECT count(*) FROM due)::int AS checks,
              ARRAY(SELECT notification_id::text FROM upd
                    UNION ALL
                    SELECT notification_id::text FROM handed) AS notification_ids,
              (SELECT count(*) FROM handed)::int AS handed_off`,
      [limit],
    );
    return {
      checks: row?.checks ?? 0,
      notificationIds: row?.notification_ids ?? [],
      handedOff: row?.handed_off ?? 0,
    };
  }

  /** Open, unexpired deliveries whose next attempt time has passed (their job was lost or never made). */
  async findDue(limit: number): Promise<DueDelivery[]> {
    const rows = await prepared<{
      notification_id: string;
      user_id: string;
      status: 'pending' | 'sent';
      attempts: number;
    }>(
      this.dataSource,
      `SELECT notification_id, user_id, status, attempts FROM deliveries
        WHERE status IN ('pending', 'sent') AND next_attempt_at IS NOT NULL AND next_attempt_at <= now()
          AND expires_at > now()
        ORDER BY next_attempt_at
        LIMIT $1`,
      [limit],
    );
    return rows.map((r) => ({
      notificationId: r.notification_id,
      userId: r.user_id,
      status: r.status,
      attempts: r.attempts,
    }));
  }

  /** Pushes a due delivery's next attempt time forward, so the sweep does not pick it twice in a row. */
  async postpone(notificationId: string, userId: string, attempts: number, until: Date): Promise<void> {
    await prepared(
      this.dataSource,
      `UPDATE deliveries SET next_attempt_at = $4, updated_at = now()
        WHERE notification_id = $1 AND user_id = $2 AND status IN ('pending', 'sent') AND attempts = $3`,
      [notificationId, userId, attempts, until],
    );
  }
}
