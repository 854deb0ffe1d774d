import type { WebhookAttemptOutcome, WebhookEventType } from '@herald/protocol';
import { DataSource } from 'typeorm';
import { query } from './sql';

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

export interface RawAttempt {
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

export function attemptOf(r: RawAttempt): AttemptRow {
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
 * Where delivery webhooks travel (ADR 0027): the events not yet in a message, the messages and their
 * attempts (endpoints, secrets and the console's reads: WebhookEndpointRepository). Nothing here runs on
 * the publish, send or ack path unless a publisher has an endpoint or a publish named a `callbackUrl`.
 */
export class WebhookRepository {
  constructor(private readonly dataSource: DataSource) {}

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
}
