import type { WebhookAttemptOutcome, WebhookEventType } from '@herald/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { query } from './sql';

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

/** Something that happened to one recipient's delivery (acked, failed, read). */
export interface RecipientEvent {
  notificationId: string;
  userId: string;
  at: Date;
}

/** Events taken for one message: one target (a publisher's endpoints, or a callback URL) and one type. */
export interface TakenGroup {
  publisherId: string;
  type: WebhookEventType;
  callbackUrl: string | null;
  items: TakenItem[];
}

export interface TakenItem {
  notificationId: string;
  event: string;
  userId: string | null;
  at: Date;
  /** For `notification.expired`: the notification's recipients, TTL end and counts (null once it is gone). */
  expiry: { recipients: number; expiresAt: string; counts: Record<string, number> } | null;
}

/** A message to make: its body is fixed, so every retry sends the same bytes under the same `webhook-id`. */
export interface NewMessage {
  id: string;
  endpointId: string | null;
  publisherId: string;
  callbackUrl: string | null;
  type: WebhookEventType;
  body: string;
  items: number;
}

/** A message with what sending it needs: where, and the secrets that sign it. */
export interface MessageToSend {
  id: string;
  endpointId: string | null;
  type: WebhookEventType;
  body: string;
  status: 'pending' | 'delivered' | 'failed' | 'cancelled';
  attempts: number;
  createdAt: Date;
  url: string | null;
  enabled: boolean;
  secrets: string[];
}

export interface AttemptRecord {
  messageId: string;
  endpointId: string | null;
  attempt: number;
  outcome: WebhookAttemptOutcome;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
}

export interface AttemptRow extends AttemptRecord {
  id: number;
  type: WebhookEventType;
  at: Date;
}

/** What an attempt leads to: delivered, another try at `nextAt`, or given up. */
export type AttemptResult = { next: 'delivered' } | { next: 'retry'; at: Date } | { next: 'failed' };

export interface AdminEndpointRow extends EndpointRow {
  pendingMessages: number;
  attemptsLastHour: number;
  failuresLastHour: number;
  lastAttempt: AttemptRow | null;
}

const ENDPOINT_COLUMNS = `id, publisher_id, url, events, description, secret, previous_secret, previous_secret_until,
  enabled, disabled_reason, disabled_at, failing_since, created_at, updated_at`;

interface RawAttempt {
  id: string;
  message_id: string;
  endpoint_id: string | null;
  type: WebhookEventType;
  attempt: number;
  at: Date;
  outcome: WebhookAttemptOutcome;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
}

function attemptOf(r: RawAttempt): AttemptRow {
  return {
    id: Number(r.id),
    messageId: r.message_id,
    endpointId: r.endpoint_id,
    type: r.type,
    attempt: r.attempt,
    at: r.at,
    outcome: r.outcome,
    statusCode: r.status_code,
    latencyMs: r.latency_ms,
    error: r.error,
  };
}

/** The secrets that sign now: the current one, and the previous one while its grace lasts. */
const SECRETS = (alias: string) =>
  `array_remove(ARRAY[${alias}.secret,
     CASE WHEN ${alias}.previous_secret_until > now() THEN ${alias}.previous_secret END], NULL)`;

/**
 * Where delivery webhooks are kept (ADR 0027): endpoints and default secrets, the events not yet in a
 * message, the messages and their attempts. Nothing here runs on the publish, send or ack path unless a
 * publisher has an endpoint or a publish named a `callbackUrl`.
 */
export class WebhookRepository {
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
  // Events
  // -------------------------------------------------------------------------

  /** A publish's `callbackUrl`, written before the notification itself (so no event can miss it). */
  async addCallback(notificationId: string, publisherId: string, url: string, expiresAt: Date): Promise<void> {
    await query(
      this.dataSource,
      `INSERT INTO webhook_callbacks (notification_id, publisher_id, url, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (notification_id) DO NOTHING`,
      [notificationId, publisherId, url, expiresAt],
    );
  }

  /**
   * Records `type` for each recipient event whose notification's publisher has an enabled endpoint wanting
   * it (a row for its endpoints), or that names a callback URL (a row for the URL). Returns how many rows.
   */
  async recordEvents(type: WebhookEventType, events: RecipientEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    const rows = await query(
      this.dataSource,
      `WITH i AS (SELECT * FROM unnest($2::uuid[], $3::text[], $4::timestamptz[]) AS i(notification_id, user_id, at)),
            n AS (SELECT n.id, n.publisher_id, n.event FROM notifications n
                   WHERE n.id = ANY ($2::uuid[]))
       INSERT INTO webhook_events (publisher_id, type, callback_url, notification_id, event, user_id, at)
       SELECT n.publisher_id, $1, NULL, i.notification_id, n.event, i.user_id, i.at
         FROM i JOIN n ON n.id = i.notification_id
        WHERE EXISTS (SELECT 1 FROM webhook_endpoints e
                       WHERE e.publisher_id = n.publisher_id AND e.enabled AND $1 = ANY (e.events))
       UNION ALL
       SELECT n.publisher_id, $1, c.url, i.notification_id, n.event, i.user_id, i.at
         FROM i JOIN n ON n.id = i.notification_id
         JOIN webhook_callbacks c ON c.notification_id = i.notification_id
       RETURNING 1`,
      [type, events.map((e) => e.notificationId), events.map((e) => e.userId), events.map((e) => e.at)],
    );
    return rows.length;
  }

  /**
   * The expiry of a notification, due at `dueAt` (just past its TTL): for its publisher's endpoints when
   * `forEndpoints`, and for its callback URL when it has one.
   */
  async scheduleExpiry(
    notification: { id: string; publisherId: string; event: string },
    dueAt: Date,
    forEndpoints: boolean,
    callbackUrl: string | null,
  ): Promise<void> {
    await query(
      this.dataSource,
      `INSERT INTO webhook_events (publisher_id, type, callback_url, notification_id, event, at, due_at)
       SELECT $1, 'notification.expired', url, $2, $3, $4, $4
         FROM (SELECT NULL::text AS url WHERE $5 UNION ALL SELECT $6::text WHERE $6::text IS NOT NULL) t`,
      [notification.publisherId, notification.id, notification.event, dueAt, forEndpoints, callbackUrl],
    );
  }

  /**
   * Takes the due events, at most `perGroup` of each (publisher, type, callback URL), oldest first, and makes
   * their messages (`build` says which) in the same transaction: an event is in exactly one message, or
   * still waiting. Two replicas taking at once take different events. Returns the messages made.
   */
  async batch(perGroup: number, build: (groups: TakenGroup[]) => Promise<NewMessage[]>): Promise<NewMessage[]> {
    return this.dataSource.transaction(async (em) => {
      const rows = await query<{
        publisher_id: string;
        type: WebhookEventType;
        callback_url: string | null;
        notification_id: string;
        event: string;
        user_id: string | null;
        at: Date;
        expiry: TakenItem['expiry'];
      }>(
        em,
        `WITH picked AS (
           SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY publisher_id, type, callback_url ORDER BY id) AS rn
                             FROM webhook_events WHERE due_at <= now()) r
            WHERE rn <= $1),
         taken AS (DELETE FROM webhook_events w USING picked WHERE w.id = picked.id RETURNING w.*)
         SELECT t.publisher_id, t.type, t.callback_url, t.notification_id, t.event, t.user_id, t.at,
                CASE WHEN t.type = 'notification.expired' THEN (
                  SELECT jsonb_build_object('recipients', n.recipients,
                                            'expiresAt', to_char(n.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                            'counts', herald_counts(n.id, n.stream_id, n.recipients, n.expires_at))
                    FROM notifications n WHERE n.id = t.notification_id) END AS expiry
           FROM taken t ORDER BY t.id`,
        [perGroup],
      );
      if (rows.length === 0) return [];
      const groups = new Map<string, TakenGroup>();
      for (const r of rows) {
        const key = `${r.publisher_id}\n${r.type}\n${r.callback_url ?? ''}`;
        let group = groups.get(key);
        if (!group) {
          group = { publisherId: r.publisher_id, type: r.type, callbackUrl: r.callback_url, items: [] };
          groups.set(key, group);
        }
        group.items.push({
          notificationId: r.notification_id,
          event: r.event,
          userId: r.user_id,
          at: r.at,
          expiry: r.expiry,
        });
      }
      const messages = await build([...groups.values()]);
      if (messages.length > 0) {
        await query(
          em,
          `INSERT INTO webhook_messages (id, endpoint_id, publisher_id, callback_url, type, body, items, next_attempt_at)
           SELECT *, now() FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])`,
          [
            messages.map((m) => m.id),
            messages.map((m) => m.endpointId),
            messages.map((m) => m.publisherId),
            messages.map((m) => m.callbackUrl),
            messages.map((m) => m.type),
            messages.map((m) => m.body),
            messages.map((m) => m.items),
          ],
        );
      }
      return messages;
    });
  }

  /** The enabled endpoints of these publishers, with the events each wants (for `batch`'s `build`). */
  async enabledEndpoints(publisherIds: string[]): Promise<{ id: string; publisherId: string; events: string[] }[]> {
    const rows = await query<{ id: string; publisher_id: string; events: string[] }>(
      this.dataSource,
      `SELECT id, publisher_id, events FROM webhook_endpoints WHERE enabled AND publisher_id = ANY ($1::text[])`,
      [publisherIds],
    );
    return rows.map((r) => ({ id: r.id, publisherId: r.publisher_id, events: r.events }));
  }

  // -------------------------------------------------------------------------
  // Messages and attempts
  // -------------------------------------------------------------------------

  async messageToSend(id: string): Promise<MessageToSend | null> {
    const rows = await query<{
      id: string;
      endpoint_id: string | null;
      type: WebhookEventType;
      body: string;
      status: MessageToSend['status'];
      attempts: number;
      created_at: Date;
      url: string | null;
      enabled: boolean | null;
      secrets: string[] | null;
    }>(
      this.dataSource,
      `SELECT m.id, m.endpoint_id, m.type, m.body, m.status, m.attempts, m.created_at,
              COALESCE(e.url, m.callback_url) AS url,
              CASE WHEN m.endpoint_id IS NULL THEN true ELSE e.enabled END AS enabled,
              CASE WHEN m.endpoint_id IS NULL THEN ${SECRETS('p')} ELSE ${SECRETS('e')} END AS secrets
         FROM webhook_messages m
         LEFT JOIN webhook_endpoints e ON e.id = m.endpoint_id
         LEFT JOIN webhook_publishers p ON m.endpoint_id IS NULL AND p.publisher_id = m.publisher_id
        WHERE m.id = $1`,
      [id],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      id: r.id,
      endpointId: r.endpoint_id,
      type: r.type,
      body: r.body,
      status: r.status,
      attempts: r.attempts,
      createdAt: r.created_at,
      url: r.url,
      enabled: r.enabled === true,
      secrets: r.secrets ?? [],
    };
  }

  /**
   * Takes try `attempt` of a pending message, before it is made: false when another job took it (a try queued
   * twice, an endpoint enabled while its retry was due), so no try is posted twice at once.
   */
  async claim(messageId: string, attempt: number): Promise<boolean> {
    const rows = await query(
      this.dataSource,
      `UPDATE webhook_messages SET attempts = $2 WHERE id = $1 AND status = 'pending' AND attempts < $2 RETURNING 1`,
      [messageId, attempt],
    );
    return rows.length > 0;
  }

  /** Keeps a message of a disabled endpoint for when it is enabled again (`setEnabled`). */
  async park(messageId: string): Promise<void> {
    await query(
      this.dataSource,
      `UPDATE webhook_messages SET next_attempt_at = NULL WHERE id = $1 AND status = 'pending'`,
      [messageId],
    );
  }

  /**
   * Records one attempt and what follows it, in one transaction: the message delivered, retried at `result.at`
   * or failed; its endpoint's run of failures ended (a success) or extended, and the endpoint disabled with
   * `disableReason` once that run is `disableAfterMs` old (by PostgreSQL's clock, which `failing_since` is
   * on). Returns whether this disabled it.
   */
  async recordAttempt(
    attempt: AttemptRecord,
    result: AttemptResult,
    disableAfterMs: number,
    disableReason: string,
  ): Promise<{ disabled: boolean }> {
    return this.dataSource.transaction(async (em) => {
      await query(
        em,
        `INSERT INTO webhook_attempts (message_id, endpoint_id, attempt, outcome, status_code, latency_ms, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          attempt.messageId,
          attempt.endpointId,
          attempt.attempt,
          attempt.outcome,
          attempt.statusCode,
          attempt.latencyMs,
          attempt.error,
        ],
      );
      await query(
        em,
        `UPDATE webhook_messages
            SET attempts = $2, status = $3,
                next_attempt_at = $4, finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
          WHERE id = $1 AND status = 'pending'`,
        [
          attempt.messageId,
          attempt.attempt,
          result.next === 'retry' ? 'pending' : result.next,
          result.next === 'retry' ? result.at : null,
        ],
      );
      if (attempt.endpointId === null) return { disabled: false };
      if (result.next === 'delivered') {
        await query(
          em,
          `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`,
          [attempt.endpointId],
        );
        return { disabled: false };
      }
      const rows = await query<{ disabled: boolean }>(
        em,
        `WITH cut AS (SELECT now() - make_interval(secs => $2 / 1000.0) AS before)
         UPDATE webhook_endpoints
            SET failing_since = COALESCE(failing_since, now()),
                enabled = enabled AND COALESCE(failing_since, now()) > cut.before,
                disabled_reason = CASE WHEN enabled AND COALESCE(failing_since, now()) <= cut.before THEN $3
                                       ELSE disabled_reason END,
                disabled_at = CASE WHEN enabled AND COALESCE(failing_since, now()) <= cut.before THEN now()
                                   ELSE disabled_at END
           FROM cut
          WHERE id = $1
         RETURNING disabled_at = now() AND NOT enabled AS disabled`,
        [attempt.endpointId, disableAfterMs, disableReason],
      );
      return { disabled: rows[0]?.disabled === true };
    });
  }

  /** Pending messages whose try is overdue by `graceMs` (their job lost with Redis, say): to queue again. */
  async overdue(graceMs: number, limit: number): Promise<{ id: string; attempts: number }[]> {
    return query<{ id: string; attempts: number }>(
      this.dataSource,
      `SELECT id, attempts FROM webhook_messages
        WHERE status = 'pending' AND next_attempt_at < now() - make_interval(secs => $1 / 1000.0)
        ORDER BY next_attempt_at LIMIT $2`,
      [graceMs, limit],
    );
  }

  /** Forgets finished messages made before `before` (their attempts go with them) and expired callbacks. */
  async prune(before: Date): Promise<number> {
    const rows = await query(
      this.dataSource,
      `WITH m AS (DELETE FROM webhook_messages WHERE id IN (
                    SELECT id FROM webhook_messages WHERE created_at < $1 AND status <> 'pending' LIMIT 5000)
                  RETURNING 1),
            c AS (DELETE FROM webhook_callbacks WHERE expires_at < $1 RETURNING 1)
       SELECT 1 FROM m`,
      [before],
    );
    return rows.length;
  }

  /** Events due and waiting for a message (not expiries still to come), and messages still to deliver. */
  async depth(): Promise<{ events: number; messages: number }> {
    const [row] = await query<{ events: number; messages: number }>(
      this.dataSource,
      `SELECT (SELECT count(*) FROM webhook_events WHERE due_at <= now())::int AS events,
              (SELECT count(*) FROM webhook_messages WHERE status = 'pending')::int AS messages`,
    );
    return row ?? { events: 0, messages: 0 };
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
