/**
 * Herald's REST bodies: the publish API, the notification views, and the end-user REST of the Server-Sent
 * Events fallback. Part of `@herald/protocol` (re-exported by `index.ts`); `docs/protocol.md` and
 * `docs/openapi.json` are the prose contract.
 */
import type { AckStatus, ErrorCode, JsonValue } from './index';

// ---------------------------------------------------------------------------
// REST bodies (publish API)
// ---------------------------------------------------------------------------

export type Audience = { users: string[] } | { topic: string } | { all: true };

export interface PublishRequest {
  to: Audience;
  event: string;
  payload?: JsonValue;
  ttlSeconds?: number;
}

export interface PublishResponse {
  id: string;
  seq: number;
  recipients: number;
}

export const DELIVERY_STATUSES = ['pending', 'sent', 'acked', 'expired', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface DeliveryView {
  userId: string;
  status: DeliveryStatus;
  attempts: number;
  firstSentAt: string | null;
  lastSentAt: string | null;
  ackedAt: string | null;
  updatedAt: string;
}

export interface NotificationView {
  id: string;
  seq: number;
  event: string;
  payload: JsonValue;
  audience: Audience;
  topic: string | null;
  createdAt: string;
  expiresAt: string;
  recipients: number;
  counts: Record<DeliveryStatus, number>;
  deliveries: {
    items: DeliveryView[];
    /** Pass as `?after=` to get the next page; null on the last page. */
    nextCursor: string | null;
  };
}

// ---------------------------------------------------------------------------
// End-user REST: the Server-Sent Events fallback and its acks
// ---------------------------------------------------------------------------

/**
 * `GET /v1/stream` sends the server frames as SSE events named after their
 * `type` (`welcome`, `notification`), with `id:` = the notification's `seq`,
 * comment lines as heartbeats, and this `close` event before the server ends
 * the stream (the same codes as the WebSocket's close frames).
 */
export interface StreamCloseEvent {
  code: number;
  reason: string;
}

/**
 * `POST /v1/stream/pong`: the answer to the stream's heartbeat (a `: ping`
 * comment), with the `connectionId` of its `welcome`. A stream whose client
 * has answered once must answer every heartbeat before the next one, or it is
 * ended; a client that never answers (a plain EventSource) is not held to it.
 */
export interface StreamPongRequest {
  connectionId: string;
}

/** `POST /v1/acks`: the notification ids the user has. */
export interface AcksRequest {
  ids: string[];
}

/** `forbidden`: not a notification of this user (or no such id), the answer the WebSocket gives as `FORBIDDEN`. */
export type AckOutcome = AckStatus | 'forbidden';

export interface AcksResponse {
  results: { id: string; status: AckOutcome }[];
}

/** Most ids one `POST /v1/acks`, or one `acks` frame, may carry. */
export const MAX_ACKS_PER_REQUEST = 500;

export interface TokenRequest {
  userId: string;
  ttlSeconds?: number;
}

export interface TokenResponse {
  token: string;
  expiresAt: string;
}

/**
 * A one-time connection ticket (`POST /v1/tickets`, `POST /admin/api/tickets`): sent as `?ticket=` instead of
 * a token in the URL; worth nothing once used, or after `expiresAt` (30 s).
 */
export interface TicketResponse {
  ticket: string;
  expiresAt: string;
}

/** The one error body shape of every REST endpoint. */
export interface ApiErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    /** Per-field reasons for `BAD_REQUEST`. */
    details?: { field: string; reason: string }[];
    requestId: string;
  };
}

// ---------------------------------------------------------------------------
// Admin API (/admin/api/), for the console
// ---------------------------------------------------------------------------

export interface AdminLoginRequest {
  password: string;
}

export interface AdminSession {
  /** Send as `Authorization: Bearer <token>` (or `?token=` on the event stream). */
  token: string;
  expiresAt: string;
}

/** One live connection, on any replica. */
export interface AdminConnection {
  connectionId: string;
  userId: string;
  replicaId: string;
  connectedAt: string;
  remoteAddress: string;
  userAgent: string;
  /** The user's topics (subscriptions belong to the user, not the connection). */
  topics: string[];
  /** The user's latest ack, on any connection; null when none. */
  lastAckAt: string | null;
}

export interface AdminConnectionsResponse {
  items: AdminConnection[];
  total: number;
  /** Live connections per replica, filter or not. */
  perReplica: Record<string, number>;
}

export interface AdminBroadcastPreview {
  /** How many users the audience reaches now. */
  recipients: number;
}

/** A notification in the console's history list. */
export type AdminNotificationSummary = Omit<NotificationView, 'payload' | 'deliveries'> & {
  /** The API key id, or `admin-console`. */
  publisherId: string;
};

export interface AdminNotificationsResponse {
  items: AdminNotificationSummary[];
  /** Pass as `?before=` for the next (older) page; null on the last page. */
  nextCursor: string | null;
  /** How far back the history reaches: retention removes notifications `retentionHours` after they are final. */
  reach: {
    /** When the oldest notification still kept was published; null when none is. */
    oldestAt: string | null;
    retentionHours: number;
  };
}

export interface AdminStats {
  at: string;
  connections: { total: number; perReplica: Record<string, number> };
  /** Notifications published per minute, oldest first, the last 30 minutes (the last entry is the current minute). */
  notificationsPerMinute: { minute: string; count: number }[];
  /** Publish → ack latency of the acked deliveries of notifications published in the last 5 minutes, in ms (null without acks). */
  ackLatencyMs: { p50: number | null; p95: number | null; samples: number };
  /** Resends (attempts beyond the first) of deliveries of notifications published in the last hour. */
  redeliveriesLastHour: number;
  /** Deliveries that ended `failed`, of notifications published in the last hour. */
  failuresLastHour: number;
}

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
