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
    await prepared(
      this.dataSource,
      `WITH u AS (
         INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
         RETURNING id, xmax = 0 AS inserted)
       ${EVERYONE_CURSORS('u')}`,
      [userId],
    );
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
