import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * notifications: one row per publish. deliveries: one row per recipient user,
 * the record that decides what is resent. users: every user seen (connected or
 * addressed by id), the audience of `{ all: true }`. topic_subscriptions: who
 * hears a topic.
 */
export class InitialSchema1764090000000 implements MigrationInterface {
  name = 'InitialSchema1764090000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE notifications (
        id              uuid PRIMARY KEY,
        seq             bigserial NOT NULL UNIQUE,
        publisher_id    text NOT NULL,
        idempotency_key text,
        request_hash    text NOT NULL,
        audience        jsonb NOT NULL,
        topic           text,
        event           text NOT NULL,
        payload         jsonb NOT NULL,
        ttl_seconds     integer NOT NULL CHECK (ttl_seconds > 0),
        recipients      integer NOT NULL DEFAULT 0,
        created_at      timestamptz NOT NULL DEFAULT now(),
        expires_at      timestamptz NOT NULL
      )`);
    await q.query(`
      CREATE UNIQUE INDEX notifications_idempotency_uq
        ON notifications (publisher_id, idempotency_key) WHERE idempotency_key IS NOT NULL`);
    await q.query(`CREATE INDEX notifications_created_at_idx ON notifications (created_at)`);

    await q.query(`
      CREATE TABLE users (
        id            text PRIMARY KEY,
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at  timestamptz NOT NULL DEFAULT now()
      )`);

    await q.query(`
      CREATE TABLE deliveries (
        notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
        user_id         text NOT NULL,
        seq             bigint NOT NULL,
        status          text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sent', 'acked', 'expired', 'failed')),
        attempts        integer NOT NULL DEFAULT 0,
        expires_at      timestamptz NOT NULL,
        next_attempt_at timestamptz,
        first_sent_at   timestamptz,
        last_sent_at    timestamptz,
        acked_at        timestamptz,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (notification_id, user_id)
      )`);
    // Replay on connect: a user's open deliveries in seq order.
    await q.query(`
      CREATE INDEX deliveries_open_by_user_idx
        ON deliveries (user_id, seq) WHERE status IN ('pending', 'sent')`);
    // The sweep: open deliveries whose next attempt is due.
    await q.query(`
      CREATE INDEX deliveries_due_idx
        ON deliveries (next_attempt_at) WHERE status IN ('pending', 'sent') AND next_attempt_at IS NOT NULL`);
    await q.query(`
      CREATE INDEX deliveries_open_expiry_idx
        ON deliveries (expires_at) WHERE status IN ('pending', 'sent')`);

    await q.query(`
      CREATE TABLE topic_subscriptions (
        user_id    text NOT NULL,
        topic      text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (topic, user_id)
      )`);
    await q.query(`CREATE INDEX topic_subscriptions_user_idx ON topic_subscriptions (user_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE topic_subscriptions`);
    await q.query(`DROP TABLE deliveries`);
    await q.query(`DROP TABLE users`);
    await q.query(`DROP TABLE notifications`);
  }
}
