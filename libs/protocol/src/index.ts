/**
 * Herald wire protocol, version 1.
 *
 * Framework-free types, zod schemas and constants shared by the server, the
 * admin console and the client SDK. `docs/protocol.md` is the prose contract;
 * this file (the server's WebSocket frames), `constants.ts` (codes, patterns,
 * limits), `frames.ts` (the client's frames) `publish.ts`, `rest.ts` and
 * `admin.ts`, `inbox.ts`, `webhooks.ts` (the REST bodies and queries) are its typed twin, and they change in the same commit.
 */

import type { ErrorCode } from './constants';
import type { ClientFrameType } from './frames';
import type { AckOutcome, AckStatus } from './rest';
import { INBOX_ACTIONS, type StateFrame } from './inbox';

export const PROTOCOL_VERSION = 1;

/** Any JSON value, as carried in a notification's payload. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

// ---------------------------------------------------------------------------
// Error codes and close codes
// ---------------------------------------------------------------------------

/**
 * Reasons of the 1008 closes that are limits, not credentials: a fresh token does not help, waiting does
 * (`TooManyConnections` is followed by ` (N)`, the limit).
 */
export const LimitCloseReason = {
  TooManyConnections: 'too many connections for this user',
  RateLimitExceeded: 'rate limit exceeded',
} as const;

/**
 * The reason of a 1013 close that sheds load (a replica over `HERALD_MAX_PENDING_HANDSHAKES`): `retry after
 * 2400 ms`. The client waits that long before its next attempt, instead of its backoff delay.
 */
export function retryAfterReason(delayMs: number): string {
  return `retry after ${Math.max(0, Math.round(delayMs))} ms`;
}

/** The delay a 1013 close reason asks for (`retry after 2400 ms`), or null when it asks for none. */
export function retryAfterOf(reason: string): number | null {
  const match = /^retry after (\d{1,7}) ms$/.exec(reason);
  return match ? Number(match[1]) : null;
}

/** WebSocket close codes used by Herald (RFC 6455 section 7.4.1). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  /**
   * A store (PostgreSQL, Redis) is unavailable: reconnect with backoff; or the replica sheds a reconnect storm:
   * reconnect after the delay in the reason (`retryAfterOf`). Herald never sends 1011 (a server bug).
   */
  TryAgainLater: 1013,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

// ---------------------------------------------------------------------------
// Server → client frames
// ---------------------------------------------------------------------------

/** First frame on every connection, sent once the token is accepted. */
export interface WelcomeFrame {
  type: 'welcome';
  protocol: typeof PROTOCOL_VERSION;
  connectionId: string;
  userId: string;
  replicaId: string;
  /**
   * The server sends a WebSocket ping at this interval and terminates a peer
   * that has not answered the previous ping by the next one (so a dead link
   * goes within two intervals). Clients may treat silence beyond it as dead.
   */
  heartbeatMs: number;
  /** Largest text frame the server accepts from the client, in bytes. */
  maxMessageBytes: number;
  /**
   * Optional protocol features this connection supports; a client uses one only when it is listed here.
   * Herald always sends the list; servers before it had none, so clients read a missing one as empty.
   * Unknown names are to be ignored.
   */
  features?: ProtocolFeature[];
}

/**
 * `ackThrough`: `{type:"ack", id, through:true}` acks `id` and every notification sent earlier on this same
 * connection and not yet acked, answered by one `ack` frame with `settled` (WebSocket only).
 * `quietAcks`: an `ack` or `acks` frame with `quiet: true` is answered only where it fails (an `error` frame
 * naming the ids), not with an `ack` or `acks` frame per success.
 * `inbox`: the synced inbox (docs/protocol.md): state frames (`read`, `seen`, `archive`, … ) are accepted and
 * `state` frames sent. Unlike the others, a client asks for it in its connect request (`?features=inbox`),
 * and only a connection that asked lists it and receives `state` frames.
 */
export const PROTOCOL_FEATURES = ['ackThrough', 'quietAcks', 'inbox'] as const;
export type ProtocolFeature = (typeof PROTOCOL_FEATURES)[number];

/** One notification for this user. Ack it with `{ type: "ack", id }`. */
export interface NotificationFrame {
  type: 'notification';
  /** Notification id (UUID): the same on every redelivery; dedup by it. */
  id: string;
  /** Global sequence number; replay is in `seq` order. */
  seq: number;
  event: string;
  payload: JsonValue;
  /** When the notification was published (ISO 8601). */
  timestamp: string;
  /** Set when the notification was published to a topic. */
  topic?: string;
  /** 1 on the first send to this user, higher on redeliveries. */
  attempt: number;
}

/**
 * The answer to every notification ack, and to a `subscribe` / `unsubscribe`
 * that carried an `id` (a `ping` is answered by `pong`, failures by `error`).
 */
export interface AckReplyFrame {
  type: 'ack';
  id: string;
  /** `ok`: done now; `duplicate`: it was already done; `expired`: the notification's TTL had passed. */
  status: AckStatus;
  /**
   * Only on the answer to an ack with `through`: how many deliveries it settled (acked, or found expired),
   * `id` included; 0 when `id` was settled before and nothing else was open on the connection.
   */
  settled?: number;
}

export interface PongFrame {
  type: 'pong';
  id?: string;
  /** Server time (ISO 8601). */
  timestamp: string;
}

export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
  /** The `id` of the command that caused it, when it carried a valid one. */
  id?: string;
  /**
   * Ids of an `acks` frame (or covered by a `through`). With `RATE_LIMITED` or `UNAVAILABLE`: not recorded, send
   * them again. With `FORBIDDEN` (a quiet `acks` frame): not this user's notifications, never send them again.
   */
  ids?: string[];
}

/** The answer to an `acks` frame: one result per id, in the frame's order. */
export interface AcksReplyFrame {
  type: 'acks';
  results: { id: string; status: AckOutcome }[];
}

export type ServerFrame =
  WelcomeFrame | NotificationFrame | AckReplyFrame | AcksReplyFrame | PongFrame | ErrorFrame | StateFrame;
export type ServerFrameType = ServerFrame['type'];

// ---------------------------------------------------------------------------
// Client → server frames: schemas and types in `frames.ts`
// ---------------------------------------------------------------------------

export const CLIENT_FRAME_TYPES: readonly ClientFrameType[] = [
  'ack',
  'acks',
  'ping',
  'subscribe',
  'unsubscribe',
  'auth',
  ...INBOX_ACTIONS,
];

/**
 * The WebSocket subprotocol Herald speaks: a client offers it first, and the server's 101 names it (and only
 * it) in `Sec-WebSocket-Protocol`.
 */
export const WS_SUBPROTOCOL = 'herald.v1';
/**
 * The prefix of the subprotocol entry that carries the user token on the upgrade, for browsers, which can
 * set no other header on a WebSocket (ADR 0013): `Sec-WebSocket-Protocol: herald.v1, herald.bearer.<token>`.
 * Never echoed: the server selects `herald.v1`.
 */
export const WS_BEARER_PREFIX = 'herald.bearer.';

export * from './constants';
export * from './publish';
export * from './rest';
export * from './admin';
export * from './frames';
export * from './problems';
export * from './inbox';
export * from './webhooks';
