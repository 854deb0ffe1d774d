import type { ClientFrame, LimitCloseReason, ServerFrame } from '@herald/protocol';
import type { ClientEvents, TransportKind } from './types.js';

/**
 * The seam between the client and its transports (WebSocket, SSE): a dialer per kind, kept for the client's
 * life, opens one transport per attempt; the transport reports to a sink and the client never sees sockets.
 */
export interface Dialer {
  readonly kind: TransportKind;
  /** Frames go both ways (commands, ack frames, welcome features). False for SSE: listen only, acks by POST. */
  readonly duplex: boolean;
  /** A transport for one attempt, reporting to `sink`; `open` starts it. */
  create(sink: TransportSink): Transport;
}

/** One connection attempt and, once the server welcomes it, the connection. */
export interface Transport {
  /** True once the attempt reached for the server (a WebSocket was created), not, say, when a ticket failed. */
  readonly attempted: boolean;
  /** True while frames can be written and a closing handshake is possible (an open WebSocket). */
  readonly writable: boolean;
  /** Connects with `token`. */
  open(token: string): void;
  /** Writes a frame; false when it cannot (not open, or listen only). */
  send(frame: ClientFrame): boolean;
  /** Sends the acks waiting in the client's outbox, this transport's way. */
  sendAcks(): void;
  /** The client closes without a handshake: the acks waiting go in one last try where the transport can. */
  sendLastAcks(): void;
  /** Starts the closing handshake; false when it could not (the client then finishes at once). */
  close(code: number, reason: string): boolean;
  /** Releases it at once; its events are ignored from then on. */
  drop(): void;
}

/**
 * What a transport reports to, bound to one attempt: once the client moves on (`current()` false), every
 * report is ignored, so a dropped transport cannot touch the next one.
 */
export interface TransportSink {
  /** False once the client dropped this transport: it should stop. */
  current(): boolean;
  /** A frame from the server. */
  frame(frame: ServerFrame): void;
  /** Something arrived that may have been a notification but could not be read. */
  unreadable(message: string): void;
  /** Proof of life without a frame (an SSE heartbeat comment). */
  heard(): void;
  /** The transport ended: the client reconnects or stops. */
  closed(code: number, reason: string): void;
  /** The client cannot go on (no `fetch` where one is needed): it stops for good. */
  fatal(code: number, reason: string): void;
  error(event: ClientEvents['error']): void;
}

/** Close codes a reconnect cannot fix: the client is speaking the protocol wrongly. */
export const FATAL_CODES = new Set([1002, 1003, 1007]);
export const POLICY = 1008;
/**
 * The server is up but cannot serve now (a store is down): retried with backoff, on the same transport; or it
 * sheds a reconnect storm and says when to come back (`retry after 2400 ms`): retried then.
 */
export const TRY_AGAIN_LATER = 1013;
export const ABNORMAL = 1006;

/** The protocol's LimitCloseReason values, here so the SDK keeps no runtime dependency (the type keeps them equal). */
const LIMIT_CLOSE_REASONS: readonly (typeof LimitCloseReason)[keyof typeof LimitCloseReason][] = [
  'too many connections for this user',
  'rate limit exceeded',
];

/** A 1008 for a server limit (too many connections of the user, frame rate), not for the token. */
export function isLimitClose(reason: string): boolean {
  return LIMIT_CLOSE_REASONS.some((limit) => reason.startsWith(limit));
}

/** The close code an HTTP refusal (of the SSE stream, or of a ticket) stands for. */
export function refusalCode(status: number): number {
  if (status === 401 || status === 403) return POLICY; // the upgrade's refusals (1008 on a WebSocket)
  if (status === 400) return 1002; // this client's mistake
  if (status === 503) return TRY_AGAIN_LATER; // a replica draining or full, or no replica: come back later
  // Anything else (a proxy's 404 or 429 during a deploy, a 5xx) may pass too, so it is retried.
  return 1011;
}
