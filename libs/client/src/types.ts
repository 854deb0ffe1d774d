/** The SDK's public types: options, notifications, events, and the client's ready states. */
import type { JsonValue, StateFrame } from '@herald/protocol';
import type { BackoffOptions } from './backoff.js';

/** The browser's `WebSocket.readyState` values, with the same meaning for the client as a whole. */
export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

export type TransportKind = 'websocket' | 'sse';

/** A WebSocket class: `globalThis.WebSocket` in browsers, `import WebSocket from 'ws'` in Node. */
export type WebSocketClass = abstract new (url: string, protocols?: string[]) => object;

export type TokenSource = () => string | Promise<string>;

export interface HeraldClientOptions {
  /** The WebSocket URL, e.g. `wss://herald.example.com/ws`. */
  url: string;
  /** A user token. With `getToken` too, used first. */
  token?: string;
  /**
   * Fetches a fresh token: before the first connect when there is no `token`,
   * when the server closes with 1008 (policy: an expired or refused token),
   * and ahead of the token's expiry (then sent in-band, without reconnecting).
   */
  getToken?: TokenSource;
  /** The WebSocket class (default `globalThis.WebSocket`; in Node pass the `ws` package's). */
  WebSocket?: WebSocketClass;
  /** `fetch` for the SSE fallback and its acks (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** `auto` (default): WebSocket, falling back to SSE after `fallbackAfterFailures` failed upgrades in a row. */
  transport?: 'auto' | TransportKind;
  /** Failed WebSocket upgrades in a row before `auto` switches to SSE (default 3). */
  fallbackAfterFailures?: number;
  /** After falling back, how long to stay on SSE before trying the WebSocket again at the next reconnect (default 300 000 ms). */
  retryWebSocketAfterMs?: number;
  /** SSE stream URL (default: `url` with http(s) and `/v1/stream` for `/ws`). */
  streamUrl?: string;
  /** SSE ack URL (default: `url` with http(s) and `/v1/acks` for `/ws`). */
  acksUrl?: string;
  /**
   * How the WebSocket carries the token (ADR 0013). `protocol` (default): in the upgrade's
   * `Sec-WebSocket-Protocol` header (`herald.v1, herald.bearer.<token>`), the one header a browser may set, so
   * the token never rides in a URL and a reconnect is one request. `ticket`: before each attempt, mint a
   * one-time ticket (`POST /v1/tickets` with the token in `Authorization`) and open `/ws?ticket=` (for a
   * server older than the subprotocol, or a token that is not a JWT). `query`: `/ws?token=` (for a server
   * older than tickets; discouraged, as proxies and logs see URLs).
   */
  credentials?: 'protocol' | 'ticket' | 'query';
  /** Ticket URL (default: `url` with http(s) and `/v1/tickets` for `/ws`). */
  ticketsUrl?: string;
  /** `auto` (default): ack after the handler returns or its promise resolves. `manual`: call `notification.ack()`. */
  ackMode?: 'auto' | 'manual';
  /** Topics to subscribe to on every connect. */
  topics?: string[];
  /** Reconnect backoff: start ~1 s, cap ~30 s, reset after a stable connection. */
  backoff?: BackoffOptions;
  /** Silence allowed beyond the server's announced heartbeat before the connection counts as dead (default 5000 ms). */
  heartbeatMarginMs?: number;
  /** How long to wait for the server's `welcome` after starting to connect (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Refresh the token this long before it expires (default 60 000 ms). */
  tokenRefreshBeforeMs?: number;
  /** Notification ids remembered for dedup, across reconnects (default 10 000). */
  dedupWindow?: number;
  /** Random source for the jitter (tests pin it). */
  random?: () => number;
  /**
   * The synced inbox (`client.inbox`): asks the server for the `inbox` feature on connect (`?features=inbox`
   * on both transports), keeps the unread count and turns `state` frames into `change` events (default false).
   */
  inbox?: boolean;
  /** Base of the end-user REST the inbox uses (default: `url` with http(s) and `/v1/me` for `/ws`). */
  meUrl?: string;
}

/** A notification as the app's handler sees it. */
export interface Notification<P extends JsonValue = JsonValue> {
  id: string;
  seq: number;
  event: string;
  payload: P;
  timestamp: string;
  topic?: string;
  /** 1 on the first send; higher when the server sent it again (this client still sees it once). */
  attempt: number;
  /** Acks it (manual mode). Queued while disconnected; safe to call twice. */
  ack(): void;
}

export type NotificationHandler = (notification: Notification) => void | Promise<void>;

export interface ClientEvents {
  /** A connection attempt starts. */
  connecting: { transport: TransportKind; attempt: number };
  /** The server's `welcome` arrived: notifications flow. */
  open: { transport: TransportKind; connectionId: string; replicaId: string; userId: string; heartbeatMs: number };
  /** A connection ended; another follows after `delayMs`. */
  reconnecting: { delayMs: number; attempt: number; code: number; reason: string; transport: TransportKind };
  /** The client stopped for good: `close()` was called, or a close that reconnecting cannot fix. */
  closed: { code: number; reason: string };
  /** The `readyState` changed. */
  state: ReadyState;
  /** Something the app may want to know; the client carries on. */
  error: { message: string; code?: string; cause?: unknown };
}

/** What `client.inbox.list()` asks for: a page of the user's inbox, newest first. */
export interface InboxListQuery {
  /** Items per page, 1-100 (the server's default: 20). */
  limit?: number;
  /** The `nextCursor` of the previous page; absent (or null) for the first. */
  cursor?: string | null;
  /** true: only unread items; false: only read ones. */
  unread?: boolean;
  /** true: only archived items; false or absent: only those not archived. */
  archived?: boolean;
  /** Only items of this event name. */
  event?: string;
}

export interface InboxEvents {
  /** A `state` frame: items of the inbox changed, on this device or another (apply it with `applyInboxChange`). */
  change: StateFrame;
  /** The unread count changed. */
  unreadCount: number;
}
