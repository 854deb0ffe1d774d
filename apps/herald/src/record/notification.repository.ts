import type { Audience, DeliveryStatus, JsonValue } from '@herald/protocol';
import { prepared, preparedInTransaction, query } from './sql';
import { DataSource } from 'typeorm';
import { EVERYONE_CURSORS } from './user.repository';
import {
  CreatedNotification,
  DeliveryRecord,
  NewNotification,
  NotificationRecord,
  StoredNotification,
} from './notification.types';

interface NotificationRow {
  id: string;
  seq: string;
  event: string;
  payload: JsonValue;
  topic: string | null;
  created_at: Date;
  expires_at: Date;
  stream_id?: string | null;
  stream_offset?: string | null;
}

export function toStoredNotification(row: NotificationRow): StoredNotification {
  return {
    id: row.id,
    seq: Number(row.seq),
    event: row.event,
    payload: row.payload,
    topic: row.topic,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    ...(row.stream_id ? { stream: { id: Number(row.stream_id), offset: Number(row.stream_offset) } } : {}),
  };
}

/**
 * How topic and everyone publishes are recorded: on their stream (ADR 0007), or a delivery row each, the
 * earlier record, kept only for `bench/record/record-models.ts` to measure against.
 */
export type BroadcastRecord = 'stream' | 'rows';

/** Notifications and the fan-out of their deliveries, in one transaction. */
export class NotificationRepository {
  constructor(
    private readonly dataSource: DataSource,
    private readonly broadcastRecord: BroadcastRecord = 'stream',
  ) {}

  /**
   * Stores a notification and one delivery per recipient atomically, in one
   * statement (one round trip; the recipient count and the delivery rows come
   * from the same snapshot). With an idempotency key already used by this
   * publisher, stores nothing and returns the earlier notification.
   */
  async create(input: NewNotification, deliveryDueAt: Date): Promise<CreatedNotification> {
    const { sql, params } = createStatement(input, deliveryDueAt, this.broadcastRecord);
    const inserted = await prepared<NotificationRow & { recipients: number }>(this.dataSource, sql, params);
    return this.outcome(input, inserted[0]);
  }

  /**
   * `create` for many publishes (topics and everyone; user lists have `createForUsers`): each its own
   * statement, all in one transaction, so they share one commit. Refused whole when one is refused, or
   * when `beforeCommit`, given each one's resolved recipients (null: an idempotent replay, nothing
   * stored), throws.
   */
  async createMany(
    inputs: NewNotification[],
    deliveryDueAt: Date,
    beforeCommit?: (recipients: (number | null)[]) => Promise<void>,
  ): Promise<CreatedNotification[]> {
    const inserted = await preparedInTransaction<NotificationRow & { recipients: number }>(
      this.dataSource,
      inputs.map((input) => createStatement(input, deliveryDueAt, this.broadcastRecord)),
      beforeCommit && ((results) => beforeCommit(results.map((rows) => rows[0]?.recipients ?? null))),
    );
    return Promise.all(inputs.map((input, i) => this.outcome(input, inserted[i]![0])));
  }

  /**
   * Many publishes to user lists in one statement and one commit (group commit: the publish path gathers
   * concurrent requests). Same rules as `create`, item by item: with an idempotency key already used by
   * its publisher (before, or earlier in this same batch), an item stores nothing and answers with the
   * earlier notification. Results come in the order of `inputs`.
   */
  async createForUsers(inputs: NewNotification[], deliveryDueAt: Date): Promise<CreatedNotification[]> {
    const userLists = inputs.map((input) => {
      if (!('users' in input.audience)) throw new Error('createForUsers takes user-list publishes only');
      return input.audience.users;
    });
    const rows = await prepared<NotificationRow & { recipients: number }>(
      this.dataSource,
      `WITH input AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::jsonb[],
                              $8::int[], $9::int[])
           WITH ORDINALITY AS t(id, publisher_id, idempotency_key, request_hash, audience, event, payload,
                                ttl_seconds, recipients, ord)),
       ${CLAIM_KEYS('SELECT publisher_id, idempotency_key, id FROM input WHERE idempotency_key IS NOT NULL ORDER BY ord')},
       n AS (
         INSERT INTO notifications
           (id, publisher_id, idempotency_key, request_hash, audience, topic, event, payload, ttl_seconds,
            expires_at, recipients)
         SELECT id, publisher_id, idempotency_key, request_hash, audience, NULL, event, payload, ttl_seconds,
                now() + (ttl_seconds * interval '1 second'), recipients
           FROM input WHERE idempotency_key IS NULL OR id IN (SELECT notification_id FROM claimed) ORDER BY ord
         RETURNING id, seq, event, payload, topic, created_at, expires_at, recipients),
       r AS (SELECT * FROM unnest($10::uuid[], $11::text[]) AS r(notification_id, user_id)),
       seen AS (
         INSERT INTO users (id) SELECT DISTINCT user_id FROM r ORDER BY 1 ON CONFLICT (id) DO NOTHING RETURNING id),
       everyone AS (${EVERYONE_CURSORS('seen', 'true')}),
       fanout AS (
         INSERT INTO deliveries (notification_id, seq, expires_at, next_attempt_at, user_id)
         SELECT n.id, n.seq, n.expires_at, $12, r.user_id FROM n JOIN r ON r.notification_id = n.id)
       SELECT * FROM n`,
      [
        inputs.map((i) => i.id),
        inputs.map((i) => i.publisherId),
        inputs.map((i) => i.idempotencyKey),
        inputs.map((i) => i.requestHash),
        inputs.map((i) => JSON.stringify(i.audience)),
        inputs.map((i) => i.event),
        inputs.map((i) => JSON.stringify(i.payload)),
        inputs.map((i) => i.ttlSeconds),
        userLists.map((users) => users.length),
        inputs.flatMap((i, k) => userLists[k]!.map(() => i.id)),
        userLists.flat(),
        deliveryDueAt,
      ],
    );
    const stored = new Map(rows.map((row) => [row.id, row]));
    return Promise.all(inputs.map((input) => this.outcome(input, stored.get(input.id))));
  }

  /** What a publish got: its row when it was stored, else the earlier publish with its idempotency key. */
  private async outcome(
    input: NewNotification,
    row: (NotificationRow & { recipients: number }) | undefined,
  ): Promise<CreatedNotification> {
    if (!row) return this.earlier(input);
    return {
      notification: toStoredNotification(row),
      recipients: row.recipients,
      created: true,
      requestHash: input.requestHash,
    };
  }

  /** The publish that used `input`'s idempotency key first. */
  private async earlier(input: NewNotification): Promise<CreatedNotification> {
    const [existing] = await prepared<NotificationRow & { recipients: number; request_hash: string }>(
      this.dataSource,
      `SELECT n.id, n.seq, n.event, n.payload, n.topic, n.created_at, n.expires_at, n.recipients, n.request_hash,
              n.stream_id, n.stream_offset
         FROM idempotency_keys k JOIN notifications n ON n.id = k.notification_id
        WHERE k.publisher_id = $1 AND k.idempotency_key = $2`,
      [input.publisherId, input.idempotencyKey],
    );
    if (!existing) throw new Error('idempotency conflict row vanished');
    return {
      notification: toStoredNotification(existing),
      recipients: existing.recipients,
      created: false,
      requestHash: existing.request_hash,
    };
  }

  /** `publisherId` null: any publisher's (the admin console). */
  async findForPublisher(id: string, publisherId: string | null): Promise<NotificationRecord | null> {
    const rows = await query<NotificationRow & { publisher_id: string; audience: Audience; recipients: number }>(
      this.dataSource,
      `SELECT id, seq, event, payload, topic, created_at, expires_at, publisher_id, audience, recipients
         FROM notifications WHERE id = $1 AND ($2::text IS NULL OR publisher_id = $2)`,
      [id, publisherId],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      ...toStoredNotification(row),
      publisherId: row.publisher_id,
      audience: row.audience,
      recipients: row.recipients,
    };
  }

  async findById(id: string): Promise<StoredNotification | null> {
    const rows = await prepared<NotificationRow>(
      this.dataSource,
      `SELECT id, seq, event, payload, topic, created_at, expires_at, stream_id, stream_offset
         FROM notifications WHERE id = $1`,
      [id],
    );
    return rows[0] ? toStoredNotification(rows[0]) : null;
  }

  /**
   * The five counts: the rows by state, plus for a stream notification the journal's acks and the virtual
   * rest (`herald_counts`). They always sum to `recipients`.
   */
  async countDeliveries(notificationId: string): Promise<Record<DeliveryStatus, number>> {
    const rows = await query<{ counts: Record<DeliveryStatus, number> }>(
      this.dataSource,
      `SELECT herald_counts(id, stream_id, recipients, expires_at) AS counts FROM notifications WHERE id = $1`,
      [notificationId],
    );
    return { pending: 0, sent: 0, acked: 0, expired: 0, failed: 0, ...(rows[0]?.counts ?? {}) };
  }

  /**
   * One page of deliveries ordered by user id, after `after` (exclusive). A stream notification's
   * recipients are the cursors covering its offset: a delivery row where one was made (trouble), else
   * `acked` at its journal flush's time, else `pending` (or `expired` past the TTL), with no send counted.
   */
  async listDeliveries(notificationId: string, after: string | null, limit: number): Promise<DeliveryRecord[]> {
    const rows = await query<{
      user_id: string;
      status: DeliveryStatus;
      attempts: number;
      first_sent_at: Date | null;
      last_sent_at: Date | null;
      acked_at: Date | null;
      updated_at: Date;
    }>(
      this.dataSource,
      `WITH n AS (SELECT id, stream_id, stream_offset, expires_at, created_at FROM notifications WHERE id = $1)
       SELECT user_id, status, attempts, first_sent_at, last_sent_at, acked_at, updated_at
         FROM deliveries
        WHERE notification_id = $1 AND ($2::text IS NULL OR user_id > $2)
          AND (SELECT stream_id FROM n) IS NULL
       UNION ALL
       SELECT c.user_id,
              coalesce(d.status, CASE WHEN j.acked_at IS NOT NULL THEN 'acked'
                                      WHEN n.expires_at <= now() THEN 'expired' ELSE 'pending' END),
              coalesce(d.attempts, 0), d.first_sent_at, d.last_sent_at, coalesce(d.acked_at, j.acked_at),
              coalesce(d.updated_at, j.acked_at, n.created_at)
         FROM n
         JOIN cursors c ON c.stream_id = n.stream_id AND c.from_offset < n.stream_offset
                       AND (c.until_offset IS NULL OR c.until_offset >= n.stream_offset)
         LEFT JOIN deliveries d ON d.notification_id = n.id AND d.user_id = c.user_id
         LEFT JOIN LATERAL (SELECT b.acked_at FROM broadcast_acks b
                             WHERE b.notification_id = n.id AND c.user_id = ANY (b.user_ids) LIMIT 1) j ON true
        WHERE n.stream_id IS NOT NULL AND ($2::text IS NULL OR c.user_id > $2)
        ORDER BY 1
        LIMIT $3`,
      [notificationId, after, limit],
    );
    return rows.map((r) => ({
      userId: r.user_id,
      status: r.status,
      attempts: r.attempts,
      firstSentAt: r.first_sent_at,
      lastSentAt: r.last_sent_at,
      ackedAt: r.acked_at,
      updatedAt: r.updated_at,
    }));
  }
}

/**
 * The CTE `claimed`: the idempotency keys of `rows` (publisher, key, notification id) that were free, now
 * taken by those notifications. A key already taken (before, by a concurrent publish once it commits, or
 * earlier in `rows`) is left out, and its notification is not stored.
 */
const CLAIM_KEYS = (rows: string): string => `claimed AS (
         INSERT INTO idempotency_keys (publisher_id, idempotency_key, notification_id) ${rows}
         ON CONFLICT DO NOTHING RETURNING notification_id)`;

/** The statement that stores one notification and its deliveries (see NotificationRepository.create). */
function createStatement(
  input: NewNotification,
  deliveryDueAt: Date,
  broadcastRecord: BroadcastRecord,
): { sql: string; params: unknown[] } {
  const audience = input.audience;
  const common = [
    input.id,
    input.publisherId,
    input.idempotencyKey,
    input.requestHash,
    JSON.stringify(audience),
    'topic' in audience ? audience.topic : null,
    input.event,
    JSON.stringify(input.payload),
    input.ttlSeconds,
  ];
  if (!('users' in audience) && broadcastRecord === 'stream') {
    // One row and one offset, whatever the audience's size (ADR 0007).
    return {
      sql: `SELECT id, seq, event, payload, topic, created_at, expires_at, recipients, stream_id, stream_offset
              FROM herald_publish_broadcast($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      params: common,
    };
  }
  const recipients =
    'users' in audience
      ? 'SELECT unnest($10::text[])'
      : 'topic' in audience
        ? 'SELECT user_id FROM topic_subscriptions WHERE topic = $6'
        : 'SELECT id FROM users';
  return {
    sql: `WITH ${CLAIM_KEYS('SELECT $2::text, $3::text, $1::uuid WHERE $3::text IS NOT NULL')},
       n AS (
         INSERT INTO notifications
           (id, publisher_id, idempotency_key, request_hash, audience, topic, event, payload, ttl_seconds,
            expires_at, recipients)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, now() + ($9::int * interval '1 second'),
                (SELECT count(*) FROM (${recipients}) AS r)
          WHERE $3::text IS NULL OR EXISTS (SELECT 1 FROM claimed)
         RETURNING id, seq, event, payload, topic, created_at, expires_at, recipients),
       seen AS (
         INSERT INTO users (id) SELECT unnest($10::text[]) ON CONFLICT (id) DO NOTHING RETURNING id),
       everyone AS (${EVERYONE_CURSORS('seen', 'true')}),
       fanout AS (
         INSERT INTO deliveries (notification_id, seq, expires_at, next_attempt_at, user_id)
         SELECT n.id, n.seq, n.expires_at, $11, r.uid FROM n, (${recipients}) AS r(uid))
       SELECT * FROM n`,
    params: [...common, 'users' in audience ? audience.users : [], deliveryDueAt],
  };
}
