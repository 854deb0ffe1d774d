import type { JsonValue } from '@herald/protocol';
import { DataSource } from 'typeorm';
import { ReplayedDelivery } from './notification.types';
import { prepared } from './sql';

/**
 * Whether the replay batch `c` sent the delivery `x`: its seq is in the batch's range, and the batch did not
 * skip it (a resumed SSE stream skips the `sent` rows the client has).
 */
const IN_REPLAY_BATCH = `c.after_seq < x.seq AND c.through_seq >= x.seq AND (x.status = 'pending' OR x.seq > c.resume_after_seq)`;

/**
 * When a replay sent the open delivery `x` and did not record it (see `replayBatch`): the send time of the
 * replay batch that holds it and ends first after its seq, or null. One short index range: nearly always
 * the first batch looked at holds it. (Of two replays of the user at once, the one whose batch ends first
 * gives the time.)
 */
export const REPLAYED_AT = `CASE WHEN x.status IN ('pending', 'sent') THEN (
  SELECT c.sent_at FROM replay_checks c
   WHERE c.user_id = x.user_id AND c.through_seq >= x.seq AND ${IN_REPLAY_BATCH}
   ORDER BY c.through_seq LIMIT 1) END`;

/**
 * A user's open delivery rows after $2, at most $3, in seq order (the replay's rows). A user with no open
 * stream offset reads only these (`REPLAY_DIRECT`): 1.4 against 2.2 ms per 500 for the merged statement in
 * this machine's EXPLAIN ANALYZE.
 */
const REPLAY_ROWS = `
         SELECT x.notification_id, x.seq, x.attempts FROM deliveries x
          WHERE x.user_id = $1 AND x.status IN ('pending', 'sent') AND x.expires_at > now() AND x.seq > $2
            -- A resumed stream has what it was sent up to $5: live sends (sent), and replays not yet
            -- recorded (pending, in a replay batch; that batch's check times them).
            AND (x.seq > $5 OR (x.status = 'pending' AND NOT EXISTS (
                  SELECT 1 FROM replay_checks c WHERE c.user_id = x.user_id AND ${IN_REPLAY_BATCH})))
          ORDER BY x.seq
          LIMIT $3`;

/** Records the batch once in `replay_checks` and reads each notification of it by primary key, in seq order. */
const REPLAY_RECORD_AND_READ = `       recorded AS (
         INSERT INTO replay_checks (user_id, after_seq, through_seq, check_at, resume_after_seq)
         SELECT $1, $2, max(seq), $4, $5 FROM batch HAVING count(*) > 0)
       SELECT n.id, n.seq, n.event, n.payload::text AS payload_text, n.topic, b.attempts + 1 AS attempt,
              n.stream_id IS NOT NULL AS streamed,
              to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at
         FROM batch b,
              LATERAL (SELECT * FROM notifications x WHERE x.id = b.notification_id OFFSET 0) n
        ORDER BY b.seq`;

/**
 * `replayBatch` when the user has open offsets on a stream (ADR 0007): its rows and its streams' open
 * offsets, merged in seq order.
 */
const REPLAY_WITH_STREAMS = `WITH direct AS (${REPLAY_ROWS}),
       -- The open offsets of the user's streams (ADR 0007): above each cursor's floor, in its interval, not
       -- settled, unexpired. Within a stream seq grows with the offset.
       virtual AS (
         SELECT v.id AS notification_id, v.seq, 0 AS attempts
           FROM cursors c,
                LATERAL (
                  SELECT x.id, x.seq FROM notifications x
                   WHERE x.stream_id = c.stream_id AND x.stream_offset > c.settled_through
                     AND (c.until_offset IS NULL OR x.stream_offset <= c.until_offset)
                     AND x.seq > $2 AND x.expires_at > now() AND NOT x.stream_offset = ANY (c.settled_above)
                     AND (x.seq > $5 OR NOT EXISTS (
                           SELECT 1 FROM replay_checks r
                            WHERE r.user_id = c.user_id AND r.after_seq < x.seq AND r.through_seq >= x.seq))
                   ORDER BY x.stream_offset
                   LIMIT $3) v
          WHERE c.user_id = $1),
       batch AS (
         SELECT * FROM (SELECT * FROM direct UNION ALL SELECT * FROM virtual) b ORDER BY seq LIMIT $3),
${REPLAY_RECORD_AND_READ}`;

/** `replayBatch` for a user with no open stream offset: rows only, about half the cost per batch. */
const REPLAY_DIRECT = `WITH batch AS (${REPLAY_ROWS}),
${REPLAY_RECORD_AND_READ}`;

/** What a user has open to replay (`ReplayRepository.openForReplay`, `UserRepository.arrive`). */
export interface OpenForReplay {
  /** An open delivery row. */
  rows: boolean;
  /** An open offset on one of the user's streams. */
  streams: boolean;
}

/** The columns `rows` and `streams` of `OpenForReplay` for the user named by the SQL expression `user`. */
export function OPEN_FOR_REPLAY(user: string): string {
  return `EXISTS (SELECT 1 FROM deliveries x
                   WHERE x.user_id = ${user} AND x.status IN ('pending', 'sent') AND x.expires_at > now()) AS rows,
          EXISTS (SELECT 1 FROM cursors c JOIN streams s ON s.id = c.stream_id
                   WHERE c.user_id = ${user}
                     AND c.settled_through < LEAST(s.head, COALESCE(c.until_offset, s.head))) AS streams`;
}

/** A row of a statement that selects `user_id` and `OPEN_FOR_REPLAY`. */
export interface OpenForReplayRow {
  user_id: string;
  rows: boolean;
  streams: boolean;
}

/** The answers for `userIds` (which may repeat), in their order; a user the rows miss is read in full. */
export function openForReplayIn(userIds: string[], rows: OpenForReplayRow[]): OpenForReplay[] {
  const found = new Map(rows.map((r) => [r.user_id, { rows: r.rows, streams: r.streams }]));
  return userIds.map((id) => found.get(id) ?? { rows: true, streams: true });
}

/**
 * The replay on connect's statements (Replay): a user's open deliveries and stream offsets read a batch at a
 * time, each batch recorded once in `replay_checks` (settled by the sweep: RedeliveryRepository), and a
 * resumed stream's skipped deliveries put back on the clock. REPLAYED_AT, when a recorded batch sent a
 * delivery, is read by the ack (DeliveryRepository) and the check (RedeliveryRepository) too.
 */
export class ReplayRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * The next batch of a user's open deliveries after `afterSeq`, in seq order, to replay on connect; each
   * goes out as send number `attempts + 1`. Nothing is written per delivery: the same statement records the
   * batch once in `replay_checks` (the user, its seq range, when it was read and `checkAt`). An ack of one
   * of them records that send on the delivery as it acks it (`ack`, `ackMany`); whatever is still unacked at
   * `checkAt` the sweep records as sent and puts on the redelivery clock (`settleReplayChecks`). Each
   * notification is read by its primary key, one lookup per row (the LATERAL subquery with `OFFSET 0` is
   * never turned into a join), whatever the statistics say: joined as tables, a fresh table's missing
   * statistics got a hash join over every notification, and `= ANY(ARRAY(...))` beside the join cost a
   * scan of the whole array per row (5x slower at 500).
   */
  async replayBatch(
    userId: string,
    afterSeq: number,
    limit: number,
    checkAt: Date,
    resumeAfterSeq = 0,
    streams = true,
  ): Promise<ReplayedDelivery[]> {
    const rows = await prepared<{
      id: string;
      seq: string;
      event: string;
      payload_text: string;
      topic: string | null;
      created_at: string;
      attempt: number;
      streamed: boolean;
    }>(this.dataSource, streams ? REPLAY_WITH_STREAMS : REPLAY_DIRECT, [
      userId,
      afterSeq,
      limit,
      checkAt,
      resumeAfterSeq,
    ]);
    // Timestamps come formatted: a Date parsed per row only to be formatted again cost more than the query.
    return rows.map((r) => ({
      notification: {
        id: r.id,
        seq: Number(r.seq),
        event: r.event,
        payload: JSON.parse(r.payload_text) as JsonValue,
        topic: r.topic,
        createdAt: r.created_at,
      },
      attempt: r.attempt,
      payloadText: r.payload_text,
      streamed: r.streamed,
    }));
  }

  /**
   * What each of `userIds` has to replay, in one statement for many connections: `rows`, an open delivery
   * row (pending or sent, unexpired); `streams`, an offset open below its stream's head on one of its
   * cursors. A user with neither has nothing to replay, and no `replayBatch` is read; one without `streams`
   * is replayed from rows alone (`REPLAY_DIRECT`). Both are supersets of what `replayBatch` finds. Answers
   * in the order of `userIds` (which may repeat).
   */
  async openForReplay(userIds: string[]): Promise<OpenForReplay[]> {
    if (userIds.length === 0) return [];
    const rows = await prepared<OpenForReplayRow>(
      this.dataSource,
      `SELECT u.user_id, ${OPEN_FOR_REPLAY('u.user_id')}
         FROM (SELECT DISTINCT user_id FROM unnest($1::text[]) AS i(user_id)) u`,
      [userIds],
    );
    return openForReplayIn(userIds, rows);
  }

  /**
   * A resumed stream skipped the sent, unacked deliveries up to `seq` (the
   * client has them): put the parked ones back on the clock, so the sweep
   * sends them again at `nextAttemptAt` if their ack does not come.
   */
  async rearmResumed(userId: string, seq: number, nextAttemptAt: Date): Promise<number> {
    const rows = await prepared<{ notification_id: string }>(
      this.dataSource,
      `UPDATE deliveries SET next_attempt_at = $3, updated_at = now()
        WHERE user_id = $1 AND status = 'sent' AND seq <= $2 AND expires_at > now() AND next_attempt_at IS NULL
        RETURNING notification_id`,
      [userId, seq, nextAttemptAt],
    );
    return rows.length;
  }
}
