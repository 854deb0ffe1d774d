import type { JsonValue, StateFrame } from '@herald/protocol';
import type { StreamPosition } from '../record/notification.types';

/** A notification as it travels between replicas (dates as ISO strings). */
export interface BusNotification {
  id: string;
  seq: number;
  event: string;
  payload: JsonValue;
  topic: string | null;
  createdAt: string;
  /**
   * End of its TTL (ms since the epoch). A first send that leaves before it is recorded checks it here,
   * since no statement does. Absent in messages from an older replica.
   */
  expiresAt?: number;
  /** A topic or everyone publish recorded on its stream: where (ADR 0007). */
  stream?: StreamPosition;
  /** The publish request's X-Request-Id, for the logs of every replica and check that handle it. */
  requestId?: string;
  /**
   * The publish named a `callbackUrl` (ADR 0027): a replica that sends it keeps its acks for webhooks even
   * before its own read of who wants events (once a second) has seen the callback.
   */
  callback?: true;
}

/** Send `notification` to one user's connections, as send number `attempt`. */
export interface DeliverMessage {
  kind: 'deliver';
  notification: BusNotification;
  attempt: number;
}

/**
 * A publish sent once to every replica, which offers it to its own users:
 * topics and everyone, and user lists too large to send user by user.
 */
export interface BroadcastMessage {
  kind: 'broadcast';
  notification: BusNotification;
  /** The recipients, for a user list; absent for a topic or everyone (PostgreSQL knows who). */
  userIds?: string[];
}

/**
 * An SSE client answered the stream's heartbeat (`POST /v1/stream/pong`) on
 * whichever replica took the request: tell the replica holding the stream.
 */
export interface StreamAliveMessage {
  kind: 'alive';
  connectionId: string;
}

/** An admin asked to close one of the user's connections. */
export interface DisconnectMessage {
  kind: 'disconnect';
  connectionId: string;
}

/** A change of the user's inbox: sent to their connections that asked for the `inbox` feature. */
export interface StateMessage {
  kind: 'state';
  frame: StateFrame;
}

/** What is sent to users, wherever they are connected. */
export type UserMessage = DeliverMessage | StreamAliveMessage | DisconnectMessage | StateMessage;

/** What travels on a replica's channel: a user message, for those of its users that presence places there. */
export type ReplicaMessage = UserMessage & { userIds: string[] };

/** A replica's own check that its subscriptions are active: it publishes this and waits to hear it. */
export interface ProbeMessage {
  kind: 'probe';
  probeId: string;
}

export type BusMessage = ReplicaMessage | BroadcastMessage | ProbeMessage;

export interface BusHandlers {
  deliver(userId: string, message: DeliverMessage): void;
  broadcast(message: BroadcastMessage): void;
  alive(userId: string, message: StreamAliveMessage): void;
  disconnect(userId: string, message: DisconnectMessage): void;
  state(userId: string, message: StateMessage): void;
}

/**
 * The routing bus between replicas (Centrifugo's broker split): publish to a user (to the replicas presence
 * says hold the user) or to every replica; receive what is sent to this replica. It is only the fast path:
 * PostgreSQL decides what is delivered. A connection's presence entry is written before its replay reads the
 * record, so a publish either finds it in presence or is in what the replay reads (ADR 0019).
 */
export abstract class Bus {
  /**
   * Sends to the replicas holding each user (a message for an SSE heartbeat or a disconnect goes to the one
   * holding that connection only); resolves with how many users had a listening replica.
   */
  abstract publishToUsers(userIds: string[], message: UserMessage): Promise<number>;
  abstract publishBroadcast(message: BroadcastMessage): Promise<void>;
  abstract setHandlers(handlers: BusHandlers): void;
  /**
   * Calls `listener` each time the receiving side comes back after it dropped, once its subscriptions are
   * confirmed active again: what was published while it was away must be read from the record
   * (BusCatchUp). Answers a function that removes the listener.
   */
  abstract onReturn(listener: () => void): () => void;
  /** False while the receiving side is away (dropped, or back but its subscriptions not yet confirmed). */
  abstract get receiving(): boolean;
}
