import { OPEN_FOR_REPLAY, OpenForReplay, OpenForReplayRow, openForReplayIn } from './replay.repository';
import { prepared, query } from './sql';
import { DataSource } from 'typeorm';

/**
 * The SQL that gives each user newly inserted by the CTE `cte` (columns `id`, and `inserted` when the CTE
 * also returns users that existed) a cursor on the everyone stream at its head, read under FOR SHARE: an
 * everyone publish committing meanwhile is either counted with them or not theirs (ADR 0007). Only new users
 * take the lock (a one-time filter skips it otherwise).
 */
export function EVERYONE_CURSORS(cte: string, inserted = `${cte}.inserted`): string {
  return `INSERT INTO cursors (user_id, stream_id, from_offset, settled_through)
       SELECT ${cte}.id, 1, h.head, h.head
         FROM ${cte}, LATERAL (SELECT head FROM streams WHERE id = 1 AND ${inserted} FOR SHARE) h
       ON CONFLICT DO NOTHING`;
}

/** Users seen (connected or addressed) and their topic subscriptions. */
export class UserRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Records a user as seen; a user seen for the first time joins the everyone stream at its head. */
  async touch(userId: string): Promise<void> {
    await this.arrive([userId]);
  }

  /**
   * Users whose connections arrive together, in one statement and one commit, each named once in any order:
   * each recorded as seen (`touch`), and what each has open to replay read (`ReplayRepository.openForReplay`,
   * in the statement's snapshot, which cannot see the everyone cursor it gives a new user: that cursor starts
   * at the head, with nothing open). Rows are written in key order, so two batches that share users cannot
   * deadlock. The commit is asynchronous when every user existed: then only `last_seen_at` moved, and
   * losing that in a PostgreSQL crash loses nothing. A new user's row and everyone cursor are committed
   * synchronously: lost, its later cursor would start past broadcasts it should have had.
   */
  async arrive(userIds: string[]): Promise<OpenForReplay[]> {
    if (userIds.length === 0) return [];
    const rows = await prepared<OpenForReplayRow>(
      this.dataSource,
      `WITH u AS (
         INSERT INTO users (id)
         SELECT DISTINCT id FROM unnest($1::text[]) AS i(id) ORDER BY id
         ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
         RETURNING id, xmax = 0 AS inserted),
       c AS (${EVERYONE_CURSORS('u')}),
       commit_mode AS (
         SELECT set_config('synchronous_commit',
                           CASE WHEN bool_or(inserted) THEN current_setting('synchronous_commit') ELSE 'off' END, true)
           FROM u)
       SELECT u.id AS user_id, ${OPEN_FOR_REPLAY('u.id')} FROM u, commit_mode`,
      [userIds],
    );
    return openForReplayIn(userIds, rows);
  }

  /**
   * Subscribes a user to a topic unless they already hold `maxTopics` subscriptions. The cursor starts at
   * the topic stream's head (`herald_subscribe`): publishes committed before are not the user's.
   */
  async subscribe(userId: string, topic: string, maxTopics: number): Promise<'added' | 'exists' | 'limit'> {
    const rows = await query<{ outcome: 'added' | 'exists' | 'limit' }>(
      this.dataSource,
      `SELECT herald_subscribe($1, $2, $3) AS outcome`,
      [userId, topic, maxTopics],
    );
    return rows[0]!.outcome;
  }

  /** Ends the subscription; what was published to the topic before stays the user's. */
  async unsubscribe(userId: string, topic: string): Promise<boolean> {
    const rows = await query<{ removed: boolean }>(this.dataSource, `SELECT herald_unsubscribe($1, $2) AS removed`, [
      userId,
      topic,
    ]);
    return rows[0]!.removed;
  }

  async topicsOf(userId: string): Promise<string[]> {
    const rows = await query<{ topic: string }>(
      this.dataSource,
      `SELECT topic FROM topic_subscriptions WHERE user_id = $1 ORDER BY topic`,
      [userId],
    );
    return rows.map((r) => r.topic);
  }
}
