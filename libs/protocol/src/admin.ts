/**
 * The admin API's bodies and queries (`/admin/api/`, for the console), one zod schema each, as `rest.ts`
 * does for the public REST API. Part of `@herald/protocol` (re-exported by `index.ts`); `docs/admin-api.md`
 * is the prose contract.
 */
import { z } from 'zod';
import { USER_ID_PATTERN } from './constants';
import { DELIVERY_STATUSES, type DeliveryStatus, NotificationViewSchema } from './rest';
import { isoTime, objectOrEmpty, queryParam } from './schema-parts';
import { InboxPageSchema } from './inbox';

// ---------------------------------------------------------------------------
// Admin API (/admin/api/), for the console
// ---------------------------------------------------------------------------

/** The message of a refused login body. */
export const ADMIN_LOGIN_MESSAGE = 'body must be {"password": "..."}';

export const AdminLoginRequestSchema = z
  .preprocess(
    objectOrEmpty,
    z.object({ password: z.string({ error: 'required: a string' }).meta({ description: 'HERALD_ADMIN_PASSWORD' }) }),
  )
  .meta({ id: 'AdminLoginRequest' });
export type AdminLoginRequest = z.output<typeof AdminLoginRequestSchema>;

export const AdminSessionSchema = z
  .object({
    token: z
      .string()
      .meta({ description: 'Send as `Authorization: Bearer <token>` (or `?token=` on /admin/api/events)' }),
    expiresAt: isoTime(),
  })
  .meta({ id: 'AdminSession' });
export type AdminSession = z.output<typeof AdminSessionSchema>;

const perReplica = z.record(z.string(), z.number().int()).meta({
  description: 'Live connections per replica id',
  example: { 'herald-1': 12, 'herald-2': 11 },
});

/** One live connection, on any replica. */
export const AdminConnectionSchema = z
  .object({
    connectionId: z.string().meta({ format: 'uuid' }),
    userId: z.string().meta({ example: 'alice' }),
    replicaId: z.string().meta({ example: 'herald-1' }),
    connectedAt: isoTime(),
    remoteAddress: z.string().meta({ example: '203.0.113.9' }),
    userAgent: z.string().meta({ example: 'Mozilla/5.0' }),
    topics: z
      .array(z.string())
      .meta({ description: "The user's topics (subscriptions belong to the user)", example: ['news'] }),
    lastAckAt: isoTime("The user's latest ack, on any connection; null when none").nullable(),
  })
  .meta({ id: 'AdminConnection' });
export type AdminConnection = z.output<typeof AdminConnectionSchema>;

export const AdminConnectionsResponseSchema = z
  .object({
    items: z.array(AdminConnectionSchema),
    total: z.number().int().meta({ description: 'Connections matching the filter' }),
    perReplica,
  })
  .meta({ id: 'AdminConnectionsResponse' });
export type AdminConnectionsResponse = z.output<typeof AdminConnectionsResponseSchema>;

export const AdminBroadcastPreviewSchema = z
  .object({ recipients: z.number().int().meta({ description: 'Users the audience reaches now', example: 42 }) })
  .meta({ id: 'AdminBroadcastPreview' });
export type AdminBroadcastPreview = z.output<typeof AdminBroadcastPreviewSchema>;

/** A notification in the console's history list. */
export const AdminNotificationSummarySchema = NotificationViewSchema.omit({ payload: true, deliveries: true })
  .extend({ publisherId: z.string().meta({ description: 'API key id, or `admin-console`', example: 'admin-console' }) })
  .meta({ id: 'AdminNotificationSummary' });
export type AdminNotificationSummary = z.output<typeof AdminNotificationSummarySchema>;

export const AdminNotificationsResponseSchema = z
  .object({
    items: z.array(AdminNotificationSummarySchema),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `?before=` for older ones; null on the last page' }),
    reach: z
      .object({
        oldestAt: isoTime('When the oldest notification still kept was published; null when none is').nullable(),
        retentionHours: z
          .number()
          .meta({ description: 'HERALD_RETENTION_HOURS: how long a notification is kept after it is final' }),
      })
      .meta({ description: 'How far back the history reaches' }),
  })
  .meta({ id: 'AdminNotificationsResponse' });
export type AdminNotificationsResponse = z.output<typeof AdminNotificationsResponseSchema>;

export const AdminStatsSchema = z
  .object({
    at: isoTime(),
    connections: z.object({ total: z.number().int(), perReplica }),
    notificationsPerMinute: z
      .array(z.object({ minute: isoTime(), count: z.number().int() }))
      .meta({ description: 'The last 30 minutes, oldest first (the last entry is the current minute)' }),
    ackLatencyMs: z
      .object({ p50: z.number().nullable(), p95: z.number().nullable(), samples: z.number().int() })
      .meta({ description: 'Publish → ack, deliveries of notifications published in the last 5 minutes' }),
    redeliveriesLastHour: z
      .number()
      .int()
      .meta({ description: 'Resends of deliveries of notifications published in the last hour' }),
    failuresLastHour: z
      .number()
      .int()
      .meta({ description: 'Deliveries that ended `failed`, of notifications published in the last hour' }),
  })
  .meta({ id: 'AdminStats' });
export type AdminStats = z.output<typeof AdminStatsSchema>;

/** An optional query parameter of the admin API: absent or empty is not given. */
function adminParam(valid: (value: string) => boolean, reason: string) {
  return z.preprocess((value) => (value === '' ? undefined : value), queryParam(valid, reason).optional());
}

const USER_ID_PARAM = adminParam((v) => USER_ID_PATTERN.test(v), 'must be a user id');
const isTime = (v: string) => !Number.isNaN(Date.parse(v));

/** `GET /admin/api/connections`. */
export const AdminConnectionsQuerySchema = z.object({ userId: USER_ID_PARAM });
export type AdminConnectionsQuery = z.input<typeof AdminConnectionsQuerySchema>;

/** `GET /admin/api/notifications`: each filter optional, checked in this order. */
export const AdminNotificationsQuerySchema = z.object({
  limit: adminParam(
    (v) => /^\d{1,3}$/.test(v) && +v >= 1 && +v <= 200,
    'must be a whole number from 1 to 200',
  ).transform((v) => (v === undefined ? 50 : Number(v))),
  event: adminParam((v) => v.length >= 1 && v.length <= 128, 'must be 1-128 characters'),
  userId: USER_ID_PARAM,
  status: adminParam(
    (v) => (DELIVERY_STATUSES as readonly string[]).includes(v),
    `must be ${DELIVERY_STATUSES.join(', ')}`,
  ).transform((v) => v as DeliveryStatus | undefined),
  from: adminParam(isTime, 'must be an ISO 8601 time').transform((v) => (v === undefined ? undefined : new Date(v))),
  to: adminParam(isTime, 'must be an ISO 8601 time').transform((v) => (v === undefined ? undefined : new Date(v))),
  before: adminParam((v) => /^\d{1,15}$/.test(v), 'must be the nextCursor of a previous page').transform((v) =>
    v === undefined ? undefined : Number(v),
  ),
});
export type AdminNotificationsQuery = z.input<typeof AdminNotificationsQuerySchema>;

/**
 * Events of the admin stream (`GET /admin/api/events`, SSE: `event:` is the
 * `type`). Besides these, the stream carries `event: stats` with an
 * `AdminStats` body when it opens and every 5 s, for the overview.
 */
export type AdminEvent =
  | { type: 'connection.opened'; connection: Omit<AdminConnection, 'topics' | 'lastAckAt'> }
  | { type: 'connection.closed'; connectionId: string; userId: string; replicaId: string; code: number }
  | {
      type: 'notification.progress';
      id: string;
      counts: Record<DeliveryStatus, number>;
      recipients: number;
      /** When the counts were read: replicas report independently, so keep the latest per id. */
      at: string;
    }
  | { type: 'user.acked'; userId: string; at: string };

/**
 * `GET /admin/api/users/:userId/inbox` (query as `GET /v1/me/notifications`): what a user has in their inbox
 * and what they read, as their own devices see it.
 */
export const AdminInboxResponseSchema = InboxPageSchema.extend({
  userId: z.string(),
  unreadCount: z.number().int().meta({ description: 'Items neither read nor archived' }),
  inboxRetentionDays: z
    .number()
    .meta({ description: 'HERALD_INBOX_RETENTION_DAYS: how long an item stays listed from publish (0: inbox off)' }),
}).meta({ id: 'AdminInboxResponse' });
export type AdminInboxResponse = z.output<typeof AdminInboxResponseSchema>;
