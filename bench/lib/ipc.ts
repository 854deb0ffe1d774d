/** Messages between a scenario (parent) and its forked load clients and publishers. */
import type { HERALD_ACK_MODES } from './args';

/** raw-acks: the raw ws server's clients that ack every notification by id. */
export type ClientKind = 'herald' | 'raw' | 'raw-acks' | 'socketio';

/** How a Herald load client acks (see HERALD_ACK_MODES). */
export type HeraldAckMode = (typeof HERALD_ACK_MODES)[number];

/** Payload of every benchmark message: index and send time (Date.now() of the publisher). */
export interface BenchPayload {
  i: number;
  t: number;
  pad?: string;
}

export interface ClientStart {
  type: 'start';
  kind: ClientKind;
  /** Connection URLs, used round-robin by user index (socket.io: the origin; path /socket.io). */
  urls: string[];
  users: string[];
  /** Handshakes in flight at once in this process. */
  concurrency: number;
  heraldAcks: HeraldAckMode;
}

/** Per message index: [index, deliveries, first receive ms, last receive ms, send time t]. */
export type RecvEntry = [number, number, number, number, number];

export type ParentToClient = ClientStart | { type: 'flush' } | { type: 'close' };

export type ClientToParent =
  | { type: 'connecting'; connected: number; failed: number }
  | { type: 'connected'; connected: number; failed: number; startedAt: number; doneAt: number; errors: string[] }
  | { type: 'report'; recv: RecvEntry[]; acksOk: number; acksOther: number; lastAckAt: number; closed: number }
  | { type: 'flushed' };

export interface PublisherStart {
  type: 'start';
  kind: 'herald' | 'raw';
  urls: string[];
  apiKey: string;
  users: string[];
  concurrency: number;
  /** Stop after this long, or after `count` 202s, whichever comes first. */
  durationMs: number;
  count: number;
}

export interface PublisherResult {
  type: 'result';
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  ids: string[];
  startedAt: number;
  doneAt: number;
  latencies: number[];
}

/** One user of a storm client: its id and the loopback address its connections leave from. */
export interface StormUser {
  id: string;
  address: string;
}

export interface StormStart {
  type: 'start';
  kind: ClientKind;
  /** WebSocket URL (socket.io: the origin). */
  url: string;
  /**
   * Herald: where tickets are minted (`POST /v1/tickets`, through Nginx) when the clients connect with
   * tickets (`credentials: 'ticket'`); without it they carry the token in `Sec-WebSocket-Protocol`, as the
   * SDK does by default (ADR 0013).
   */
  ticketsUrl?: string;
  users: StormUser[];
  /** First connections in flight at once in this process. */
  concurrency: number;
  heraldAcks: HeraldAckMode;
}

/** Per user that received notifications: id → times received, id → ms after the mark its ack was answered ok. */
export interface StormUserResult {
  user: string;
  received: [string, number][];
  acked: [string, number][];
}

export interface StormResult {
  type: 'collected';
  /** Per user whose connection ended after the mark: ms from the mark to its next welcome, or -1 (never). */
  reconnectMs: number[];
  /** Handshakes that failed after the mark, by how (`HTTP 502`, `ECONNREFUSED`, `shed (1013)`, `close 1011 …`). */
  refused: Record<string, number>;
  /** Connections that ended again after reconnecting (after the mark). */
  dropsAfterReconnect: number;
  users: StormUserResult[];
}

export type ParentToStorm =
  | StormStart
  /** The storm starts now: closes from here on count, and times are taken from `at` (Date.now()). */
  | { type: 'mark'; at: number }
  | { type: 'offline' }
  | { type: 'collect' }
  | { type: 'close' };

export type StormToParent =
  | { type: 'connected'; connected: number; errors: string[] }
  | { type: 'tick'; connected: number; affected: number; reconnected: number; received: number; acked: number }
  | { type: 'offline'; users: string[] }
  | StormResult;
