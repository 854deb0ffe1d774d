import { query } from './sql';
import { DataSource } from 'typeorm';

/** Users seen (connected or addressed) and their topic subscriptions. */
export class UserRepository {
  constructor(private readonly dataSource: DataSource) {}

  async touch(userId: string): Promise<void> {
    await query(
      this.dataSource,
      `INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET last_seen_at = now()`,
      [userId],
    );
  }

  async subscribe(userId: string, topic: string): Promise<boolean> {
    const rows = await query<unknown>(
      this.dataSource,
      `INSERT INTO topic_subscriptions (user_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1`,
      [userId, topic],
    );
    return rows.length > 0;
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
