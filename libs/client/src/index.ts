/**
 * @herald/client — the Herald client SDK for browsers and Node.
 * See docs/client.md.
 */
export { HeraldClient } from './client.js';
export {
  ReadyState,
  type ClientEvents,
  type HeraldClientOptions,
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
export type { JsonValue, NotificationFrame, ServerFrame, ClientFrame, WelcomeFrame } from '@herald/protocol';
