import { prepared, query } from './sql';
import { DataSource } from 'typeorm';

/** Users seen (connected or addressed) and their topic subscriptions. */
export class UserRepository {
  constructor(private readonly dataSource: DataSource) {}

  async touch(userId: string): Promise<void> {
    await prepared(
      this.dataSource,
      `INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET last_seen_at = now()`,
      [userId],
    );
  }

  /** Subscribes a user to a topic unless they already hold `maxTopics` subscriptions. */
  async subscribe(userId: string, topic: string, maxTopics: number): Promise<'added' | 'exists' | 'limit'> {
    const rows = await query<{ outcome: 'added' | 'exists' | 'limit' }>(
      this.dataSource,
      `WITH ins AS (
         INSERT INTO topic_subscriptions (user_id, topic)
         SELECT $1, $2 WHERE (SELECT count(*) FROM topic_subscriptions WHERE user_id = $1) < $3
         ON CONFLICT DO NOTHING
         RETURNING 1)
       SELECT CASE
                WHEN EXISTS (SELECT 1 FROM ins) THEN 'added'
                WHEN EXISTS (SELECT 1 FROM topic_subscriptions WHERE user_id = $1 AND topic = $2) THEN 'exists'
                ELSE 'limit'
              END AS outcome`,
      [userId, topic, maxTopics],
    );
    return rows[0]!.outcome;
  }

  async unsubscribe(userId: string, topic: string): Promise<boolean> {
    const rows = await query<unknown>(
      this.dataSource,
      `DELETE FROM topic_subscriptions WHERE user_id = $1 AND topic = $2 RETURNING 1`,
      [userId, topic],
    );
    return rows.length > 0;
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
