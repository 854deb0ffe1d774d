import type { WebhookEventType } from '@herald/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { query } from './sql';
import { attemptOf, type AttemptRow, type RawAttempt } from './webhook.repository';

/** An endpoint as stored (its secrets included: they sign, so they are kept as they are). */
export interface EndpointRow {
  id: string;
  publisherId: string;
  url: string;
  events: WebhookEventType[];
  description: string;
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: Date | null;
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: Date | null;
  failingSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface RawEndpoint {
  id: string;
  publisher_id: string;
  url: string;
  events: WebhookEventType[];
  description: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: Date | null;
  enabled: boolean;
  disabled_reason: string | null;
  disabled_at: Date | null;
  failing_since: Date | null;
  created_at: Date;
  updated_at: Date;
}

function endpointOf(r: RawEndpoint): EndpointRow {
  return {
    id: r.id,
    publisherId: r.publisher_id,
    url: r.url,
    events: r.events,
    description: r.description,
    secret: r.secret,
    previousSecret: r.previous_secret,
    previousSecretUntil: r.previous_secret_until,
    enabled: r.enabled,
    disabledReason: r.disabled_reason,
    disabledAt: r.disabled_at,
    failingSince: r.failing_since,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Who wants events at all: the enabled endpoints' publishers and events, and the last callback's expiry. */
export interface WebhookInterestRows {
  endpoints: { publisherId: string; events: WebhookEventType[] }[];
  callbacksUntil: Date | null;
  /** Any event still to batch, or message still to deliver (a callback's retries outlive its notification). */
  pendingWork: boolean;
}

export interface AdminEndpointRow extends EndpointRow {
  pendingMessages: number;
  attemptsLastHour: number;
  failuresLastHour: number;
  lastAttempt: AttemptRow | null;
}

const ENDPOINT_COLUMNS = `id, publisher_id, url, events, description, secret, previous_secret, previous_secret_until,
  enabled, disabled_reason, disabled_at, failing_since, created_at, updated_at`;

/**
 * A publisher's webhook endpoints and default secrets (ADR 0027), who wants events (read by every replica
 * each second), and the console's view of endpoints and attempts. What travels (events, messages, attempts
 * recorded): WebhookRepository.
 */
export class WebhookEndpointRepository {
  constructor(private readonly dataSource: DataSource) {}

  // -------------------------------------------------------------------------
  // Endpoints
  // -------------------------------------------------------------------------

  /**
   * Adds an endpoint unless the publisher has `max` already (null then). Creates of one publisher take turns
   * (an advisory lock on its id), so two at once cannot both pass the limit.
   */
  async createEndpoint(
    endpoint: { id: string; publisherId: string; url: string; events: string[]; description: string; secret: string },
    max: number,
  ): Promise<EndpointRow | null> {
    return this.dataSource.transaction(async (em) => {
      await query(em, `SELECT pg_advisory_xact_lock(hashtext('herald_webhooks:' || $1))`, [endpoint.publisherId]);
      const rows = await query<RawEndpoint>(
        em,
        `INSERT INTO webhook_endpoints (id, publisher_id, url, events, description, secret)
         SELECT $1, $2, $3, $4::text[], $5, $6
          WHERE (SELECT count(*) FROM webhook_endpoints WHERE publisher_id = $2) < $7
         RETURNING ${ENDPOINT_COLUMNS}`,
        [endpoint.id, endpoint.publisherId, endpoint.url, endpoint.events, endpoint.description, endpoint.secret, max],
      );
      return rows[0] ? endpointOf(rows[0]) : null;
    });
  }

  /** A publisher's endpoints (every publisher's with null), oldest first. */
  async listEndpoints(publisherId: string | null): Promise<EndpointRow[]> {
    const rows = await query<RawEndpoint>(
      this.dataSource,
      `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE $1::text IS NULL OR publisher_id = $1
        ORDER BY created_at, id`,
      [publisherId],
    );
    return rows.map(endpointOf);
  }

  /** One endpoint, only if it is `publisherId`'s (any publisher's with null). */
  async getEndpoint(id: string, publisherId: string | null): Promise<EndpointRow | null> {
    const rows = await query<RawEndpoint>(
      this.dataSource,
      `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND ($2::text IS NULL OR publisher_id = $2)`,
      [id, publisherId],
    );
    return rows[0] ? endpointOf(rows[0]) : null;
  }

  async updateEndpoint(
    id: string,
    publisherId: string,
    patch: { url?: string; events?: string[]; description?: string },
  ): Promise<EndpointRow | null> {
    const rows = await query<RawEndpoint>(
      this.dataSource,
      `UPDATE webhook_endpoints
          SET url = COALESCE($3, url), events = COALESCE($4::text[], events),
              description = COALESCE($5, description), updated_at = now()
        WHERE id = $1 AND publisher_id = $2
       RETURNING ${ENDPOINT_COLUMNS}`,
      [id, publisherId, patch.url ?? null, patch.events ?? null, patch.description ?? null],
    );
    return rows[0] ? endpointOf(rows[0]) : null;
  }

  /** Deletes an endpoint with its messages and attempts; false when it is not the publisher's. */
  async deleteEndpoint(id: string, publisherId: string): Promise<boolean> {
    const rows = await query(
      this.dataSource,
      `DELETE FROM webhook_endpoints WHERE id = $1 AND publisher_id = $2 RETURNING 1`,
      [id, publisherId],
    );
    return rows.length > 0;
  }

  /**
   * Disables an endpoint (`reason` says why), or enables it again: then its run of failures starts afresh
   * and what it has pending is due now (`resumed`; what was made before `retryFrom` is given up).
   */
  async setEnabled(
    id: string,
    publisherId: string,
    enabled: boolean,
    reason: string | null,
    retryFrom: Date,
  ): Promise<{ endpoint: EndpointRow; resumed: { id: string; attempts: number }[] } | null> {
    return this.dataSource.transaction(async (em) => {
      const rows = await query<RawEndpoint & { was_enabled: boolean }>(
        em,
        `WITH old AS (SELECT id, enabled FROM webhook_endpoints WHERE id = $1 AND publisher_id = $2 FOR UPDATE)
         UPDATE webhook_endpoints e
            SET enabled = $3, disabled_reason = CASE WHEN $3 THEN NULL ELSE COALESCE(e.disabled_reason, $4) END,
                disabled_at = CASE WHEN $3 THEN NULL ELSE COALESCE(e.disabled_at, now()) END,
                failing_since = CASE WHEN $3 THEN NULL ELSE e.failing_since END, updated_at = now()
           FROM old WHERE e.id = old.id
         RETURNING ${ENDPOINT_COLUMNS.split(',')
           .map((c) => `e.${c.trim()}`)
           .join(', ')}, old.enabled AS was_enabled`,
        [id, publisherId, enabled, reason],
      );
      const row = rows[0];
      if (!row) return null;
      // Only an endpoint that was disabled has parked messages to resume; enabling one twice resumes nothing.
      const resumed = enabled && !row.was_enabled ? await this.resumePending(em, id, retryFrom) : [];
      return { endpoint: endpointOf(row), resumed };
    });
  }

  /**
   * An endpoint's pending messages, on its enabling: parked while it was disabled, or waiting for a retry
   * hours away. Due now (returned, to be tried at once), or given up when made before `retryFrom`.
   */
  private async resumePending(
    em: EntityManager,
    endpointId: string,
    retryFrom: Date,
  ): Promise<{ id: string; attempts: number }[]> {
    const rows = await query<{ id: string; attempts: number; status: string }>(
      em,
      `UPDATE webhook_messages
          SET status = CASE WHEN created_at < $2 THEN 'failed' ELSE 'pending' END,
              finished_at = CASE WHEN created_at < $2 THEN now() END,
              next_attempt_at = CASE WHEN created_at < $2 THEN NULL ELSE now() END
        WHERE endpoint_id = $1 AND status = 'pending'
       RETURNING id, attempts, status`,
      [endpointId, retryFrom],
    );
    return rows.filter((r) => r.status === 'pending').map(({ id, attempts }) => ({ id, attempts }));
  }

  /** A new secret for an endpoint; the previous one signs too until `graceUntil`. */
  async rotateSecret(id: string, publisherId: string, secret: string, graceUntil: Date): Promise<EndpointRow | null> {
    const rows = await query<RawEndpoint>(
      this.dataSource,
      `UPDATE webhook_endpoints
          SET previous_secret = secret, previous_secret_until = $4, secret = $3, updated_at = now()
        WHERE id = $1 AND publisher_id = $2
       RETURNING ${ENDPOINT_COLUMNS}`,
      [id, publisherId, secret, graceUntil],
    );
    return rows[0] ? endpointOf(rows[0]) : null;
  }

  /** Sets the key's default secret; a previous one signs too until `graceUntil` (returned, null if none). */
  async setDefaultSecret(publisherId: string, secret: string, graceUntil: Date): Promise<Date | null> {
    const rows = await query<{ previous_secret_until: Date | null }>(
      this.dataSource,
      `INSERT INTO webhook_publishers AS p (publisher_id, secret) VALUES ($1, $2)
       ON CONFLICT (publisher_id) DO UPDATE
         SET previous_secret = p.secret, previous_secret_until = $3, secret = $2, updated_at = now()
       RETURNING previous_secret_until`,
      [publisherId, secret, graceUntil],
    );
    return rows[0]?.previous_secret_until ?? null;
  }

  async hasDefaultSecret(publisherId: string): Promise<boolean> {
    const rows = await query(this.dataSource, `SELECT 1 FROM webhook_publishers WHERE publisher_id = $1`, [
      publisherId,
    ]);
    return rows.length > 0;
  }

  /** Who wants events: read every second by each replica (two small index reads). */
  async interest(): Promise<WebhookInterestRows> {
    const [row] = await query<{
      endpoints: { publisherId: string; events: WebhookEventType[] }[];
      until: Date | null;
      pending: boolean;
    }>(
      this.dataSource,
      `SELECT COALESCE((SELECT json_agg(json_build_object('publisherId', publisher_id, 'events', events))
                          FROM webhook_endpoints WHERE enabled), '[]') AS endpoints,
              (SELECT max(expires_at) FROM webhook_callbacks) AS until,
              EXISTS (SELECT 1 FROM webhook_messages WHERE status = 'pending')
                OR EXISTS (SELECT 1 FROM webhook_events) AS pending`,
    );
    return {
      endpoints: row?.endpoints ?? [],
      callbacksUntil: row?.until ?? null,
      pendingWork: row?.pending ?? false,
    };
  }

  // -------------------------------------------------------------------------
  // The console
  // -------------------------------------------------------------------------

  async adminEndpoints(id: string | null): Promise<AdminEndpointRow[]> {
    const rows = await query<
      RawEndpoint & { pending: number; attempts: number; failures: number; last: RawAttempt | null }
    >(
      this.dataSource,
      `SELECT e.*,
              (SELECT count(*) FROM webhook_messages m WHERE m.endpoint_id = e.id AND m.status = 'pending')::int AS pending,
              (SELECT count(*) FROM webhook_attempts a WHERE a.endpoint_id = e.id AND a.at > now() - interval '1 hour')::int
                AS attempts,
              (SELECT count(*) FROM webhook_attempts a
                WHERE a.endpoint_id = e.id AND a.at > now() - interval '1 hour' AND a.outcome <> 'ok')::int AS failures,
              (SELECT to_jsonb(x) FROM (SELECT a.id, a.message_id, a.endpoint_id, m.type, a.attempt, a.at, a.outcome,
                                               a.status_code, a.latency_ms, a.error
                                          FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id
                                         WHERE a.endpoint_id = e.id ORDER BY a.id DESC LIMIT 1) x) AS last
         FROM webhook_endpoints e
        WHERE $1::uuid IS NULL OR e.id = $1
        ORDER BY e.publisher_id, e.created_at, e.id`,
      [id],
    );
    return rows.map((r) => ({
      ...endpointOf(r),
      pendingMessages: r.pending,
      attemptsLastHour: r.attempts,
      failuresLastHour: r.failures,
      lastAttempt: r.last ? attemptOf({ ...r.last, at: new Date(r.last.at) }) : null,
    }));
  }

  async attempts(endpointId: string, limit: number): Promise<AttemptRow[]> {
    const rows = await query<RawAttempt>(
      this.dataSource,
      `SELECT a.id, a.message_id, a.endpoint_id, m.type, a.attempt, a.at, a.outcome, a.status_code, a.latency_ms, a.error
         FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id
        WHERE a.endpoint_id = $1 ORDER BY a.id DESC LIMIT $2`,
      [endpointId, limit],
    );
    return rows.map(attemptOf);
  }
}
