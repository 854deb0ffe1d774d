/**
 * @herald/client — the Herald client SDK for browsers and Node.
 * See docs/client.md.
 */
export { HeraldClient } from './client.js';
export { InboxClient } from './inbox-client.js';
export { applyInboxChange, InboxError, type InboxFlags } from './inbox-state.js';
export {
  ReadyState,
  type ClientEvents,
  type HeraldClientOptions,
  type InboxEvents,
  type InboxListQuery,
  type Notification,
  type NotificationHandler,
  type TokenSource,
  type TransportKind,
  type WebSocketClass,
} from './types.js';
export { reconnectDelayMs, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { RecentIds } from './dedup.js';
export { SseParser, type SseEvent } from './sse.js';
export { tokenExpiresAtMs } from './token.js';
export type {
  JsonValue,
  NotificationFrame,
  ServerFrame,
  ClientFrame,
  WelcomeFrame,
  InboxAction,
  InboxItem,
  InboxPage,
  ReadAllResponse,
  StateFrame,
} from '@herald/protocol';
