import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Delivery webhooks (ADR 0027). Nothing here is written on the publish, send or ack path unless a publisher
 * has an endpoint or a publish names a `callbackUrl`.
 *
 * - `webhook_endpoints`: a publisher key's endpoints, with their signing secret (and the previous one, which
 *   signs too until `previous_secret_until`, after a rotation), and why one is disabled.
 * - `webhook_publishers`: a key's default secret, which signs what goes to a publish's `callbackUrl`.
 * - `webhook_callbacks`: a publish's `callbackUrl`, kept until its notification has expired.
 * - `webhook_events`: what happened and is not yet in a message (an ack, a read, a failure, or an expiry due
 *   at its `due_at`): the batcher takes them, at most 1 000 per target and type each second.
 * - `webhook_messages`: one request to one target (an endpoint, or a callback URL) with its fixed body and
 *   `webhook-id`, pending until delivered, given up or its endpoint deleted.
 * - `webhook_attempts`: each try of a message, for the console.
 *
 * Only new tables: replicas of the previous release run beside it (a rolling upgrade).
 */
export class Webhooks1764180000000 implements MigrationInterface {
  name = 'Webhooks1764180000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE IF NOT EXISTS webhook_endpoints (
        id                    uuid PRIMARY KEY,
        publisher_id          text NOT NULL,
        url                   text NOT NULL,
        events                text[] NOT NULL,
        description           text NOT NULL DEFAULT '',
        secret                text NOT NULL,
        previous_secret       text,
        previous_secret_until timestamptz,
        enabled               boolean NOT NULL DEFAULT true,
        disabled_reason       text,
        disabled_at           timestamptz,
        failing_since         timestamptz,
        created_at            timestamptz NOT NULL DEFAULT now(),
        updated_at            timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX IF NOT EXISTS webhook_endpoints_publisher_idx ON webhook_endpoints (publisher_id)`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS webhook_publishers (
        publisher_id          text PRIMARY KEY,
        secret                text NOT NULL,
        previous_secret       text,
        previous_secret_until timestamptz,
        updated_at            timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS webhook_callbacks (
        notification_id uuid PRIMARY KEY,
        publisher_id    text NOT NULL,
        url             text NOT NULL,
        expires_at      timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX IF NOT EXISTS webhook_callbacks_expires_idx ON webhook_callbacks (expires_at)`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS webhook_events (
        id              bigserial PRIMARY KEY,
        publisher_id    text NOT NULL,
        type            text NOT NULL,
        callback_url    text,
        notification_id uuid NOT NULL,
        event           text NOT NULL,
        user_id         text,
        at              timestamptz NOT NULL DEFAULT now(),
        due_at          timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX IF NOT EXISTS webhook_events_due_idx ON webhook_events (due_at)`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS webhook_messages (
        id              text PRIMARY KEY,
        endpoint_id     uuid REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
        publisher_id    text NOT NULL,
        callback_url    text,
        type            text NOT NULL,
        body            text NOT NULL,
        items           integer NOT NULL,
        status          text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
        attempts        integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        created_at      timestamptz NOT NULL DEFAULT now(),
        finished_at     timestamptz,
        CHECK ((endpoint_id IS NULL) <> (callback_url IS NULL))
      )`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS webhook_messages_pending_idx ON webhook_messages (next_attempt_at)
       WHERE status = 'pending'`);
    await q.query(`CREATE INDEX IF NOT EXISTS webhook_messages_endpoint_idx ON webhook_messages (endpoint_id, status)`);
    await q.query(`CREATE INDEX IF NOT EXISTS webhook_messages_created_idx ON webhook_messages (created_at)`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS webhook_attempts (
        id          bigserial PRIMARY KEY,
        message_id  text NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
        endpoint_id uuid REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
        attempt     integer NOT NULL,
        at          timestamptz NOT NULL DEFAULT now(),
        outcome     text NOT NULL,
        status_code integer,
        latency_ms  integer NOT NULL,
        error       text
      )`);
    await q.query(
      `CREATE INDEX IF NOT EXISTS webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id DESC)`,
    );
    await q.query(`CREATE INDEX IF NOT EXISTS webhook_attempts_message_idx ON webhook_attempts (message_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of [
      'webhook_attempts',
      'webhook_messages',
      'webhook_events',
      'webhook_callbacks',
      'webhook_publishers',
      'webhook_endpoints',
    ]) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
