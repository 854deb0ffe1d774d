import type { Audience, DeliveryStatus, JsonValue } from '@herald/protocol';

/** What the publish path stores. */
export interface NewNotification {
  id: string;
  publisherId: string;
  idempotencyKey: string | null;
  requestHash: string;
  audience: Audience;
  event: string;
  payload: JsonValue;
  ttlSeconds: number;
}

/** A stored notification, as routed to replicas and sent in frames. */
export interface StoredNotification {
  id: string;
  seq: number;
  event: string;
  payload: JsonValue;
  topic: string | null;
  createdAt: Date;
  expiresAt: Date;
  /** A topic or everyone publish recorded on its stream (ADR 0007): the stream and the offset there. */
  stream?: StreamPosition;
  /** Its publish named a `callbackUrl` (carried on the bus: BusNotification.callback). */
  callback?: true;
}

/** Where a broadcast sits in its stream: offsets are gapless and follow commit order. */
export interface StreamPosition {
  id: number;
  offset: number;
}

export interface CreatedNotification {
  notification: StoredNotification;
  recipients: number;
  /** False when the idempotency key matched an earlier publish. */
  created: boolean;
  /** The earlier publish's request hash when `created` is false. */
  requestHash: string;
}

export interface NotificationRecord extends StoredNotification {
  publisherId: string;
  audience: Audience;
  recipients: number;
}

export interface DeliveryRecord {
  userId: string;
  status: DeliveryStatus;
  attempts: number;
  firstSentAt: Date | null;
  lastSentAt: Date | null;
  ackedAt: Date | null;
  updatedAt: Date;
}

/** A delivery that was just (re)sent, with what the frame needs. */
export interface SentDelivery {
  userId: string;
  attempt: number;
  /** True when this call moved the attempt counter (the caller schedules the next check). */
  counted: boolean;
}

/**
 * A replayed delivery: its notification as frames carry it (`createdAt` already in ISO 8601, formatted by
 * PostgreSQL, as `Date.toISOString` would), and the send number it goes out as.
 */
export interface ReplayedDelivery {
  notification: Omit<StoredNotification, 'createdAt' | 'expiresAt'> & { createdAt: string };
  attempt: number;
  /** The payload's JSON as PostgreSQL printed it (the frame's text is built around it, not re-serialised). */
  payloadText: string;
  /** A broadcast recorded on its stream: its ack goes to the user's cursor. */
  streamed: boolean;
}

/** Open delivery whose redelivery time has passed, as found by the sweep. */
export interface DueDelivery {
  notificationId: string;
  userId: string;
  status: 'pending' | 'sent';
  attempts: number;
}

export type AckOutcome = 'acked' | 'duplicate' | 'expired' | 'unknown';

/** What an ack did: `changed` when this call moved the delivery (to acked or expired). */
export interface AckResult {
  outcome: AckOutcome;
  changed: boolean;
  /** For a change to `acked`: milliseconds from publish to this ack (includes time the user was offline). */
  sincePublishMs?: number;
  /** For a change to `acked`: milliseconds from the latest send to this ack (the client's own latency). */
  sinceSentMs?: number;
}
