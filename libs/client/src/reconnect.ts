import { type BackoffOptions, reconnectDelayMs, shedDelayMs } from './backoff.js';
import { FATAL_CODES, isLimitClose, POLICY, TRY_AGAIN_LATER } from './transport.js';
import type { TransportKind } from './types.js';

export interface ReconnectOptions {
  mode: 'auto' | TransportKind;
  /** A WebSocket class was given or found. */
  hasWebSocket: boolean;
  /** Failed upgrades in a row before `auto` falls back to SSE. */
  fallbackAfter: number;
  retryWebSocketAfterMs: number;
  backoff: Required<BackoffOptions>;
  random: () => number;
  /** A getToken callback was given: a refused token may be replaced. */
  canRefreshToken: boolean;
}

/** How a transport ended, as the reconnect policy needs it. */
export interface Ending {
  code: number;
  reason: string;
  /** The server's welcome had arrived. */
  wasOpen: boolean;
  openForMs: number;
  /** The attempt reached for the server (a WebSocket was created). */
  attempted: boolean;
}

/** Stop for good, or come back after `delayMs` (a fresh token first when `freshToken`). */
export type NextStep = { stop: true } | { stop: false; delayMs: number; freshToken: boolean; fellBack: boolean };

/**
 * The reconnect policy: attempts and failures counted across reconnects, and from them the next delay
 * (backoff with jitter, or the delay a shedding server asks for) and the transport (WebSocket, or SSE
 * after repeated failed upgrades, then the WebSocket again after a while).
 */
export class Reconnects {
  /** The transport in use now (or next). */
  kind: TransportKind;
  attempt = 0;
  failedUpgrades = 0;
  private policyCloses = 0;
  /** When `auto` fell back to SSE; the WebSocket is tried again after retryWebSocketAfterMs. */
  private fellBackAt: number | undefined;

  constructor(private readonly options: ReconnectOptions) {
    this.kind = options.mode === 'sse' ? 'sse' : 'websocket';
    if (this.kind === 'websocket' && !options.hasWebSocket) {
      if (options.mode === 'websocket')
        throw new TypeError('no WebSocket class: pass options.WebSocket (in Node, the ws package)');
      this.kind = 'sse';
    }
  }

  /** `connect()`: counts start afresh on the preferred transport. */
  reset(): void {
    this.kind = this.options.mode === 'sse' || !this.options.hasWebSocket ? 'sse' : 'websocket';
    this.fellBackAt = undefined;
    this.attempt = 0;
    this.failedUpgrades = 0;
    this.policyCloses = 0;
  }

  /** Before each attempt. */
  beforeAttempt(): void {
    if (this.fellBackAt !== undefined && Date.now() - this.fellBackAt >= this.options.retryWebSocketAfterMs) {
      // The network that blocked WebSockets may be gone (a laptop moves on): try again.
      this.fellBackAt = undefined;
      this.failedUpgrades = 0;
      this.kind = 'websocket';
    }
  }

  /** The server's welcome arrived. */
  opened(): void {
    if (this.kind === 'websocket') this.failedUpgrades = 0;
  }

  /** A transport ended while the client meant to stay up: stop, or when (and on what) to come back. */
  next({ code, reason, wasOpen, openForMs, attempted }: Ending): NextStep {
    const { backoff } = this.options;
    if (FATAL_CODES.has(code)) return { stop: true };
    if (openForMs >= backoff.stableAfterMs) {
      this.attempt = 0;
      this.policyCloses = 0;
    }
    let freshToken = false;
    if (code === POLICY && !isLimitClose(reason)) {
      // A fresh token may fix it, once; a second policy close in a row means it cannot.
      // (A limit close is not about the token: it is retried with backoff like any other.)
      this.policyCloses += 1;
      if (!this.options.canRefreshToken || this.policyCloses > 1) return { stop: true };
      freshToken = true;
    }
    let fellBack = false;
    // A replica shedding a storm says when to come back: that delay, and this attempt does not count as failed.
    const shedMs = code === TRY_AGAIN_LATER ? shedDelayMs(reason, backoff) : null;
    if (code === TRY_AGAIN_LATER) {
      // The upgrade went through and the server asks to wait: neither a refused token nor a network that
      // blocks WebSockets, so it ends a run of failed upgrades instead of adding to it.
      if (this.kind === 'websocket') this.failedUpgrades = 0;
    } else if (!wasOpen && this.kind === 'websocket' && attempted) {
      this.failedUpgrades += 1;
      // A browser sees a refused upgrade (401) as 1006: after two in a row, try a fresh token too.
      if (this.failedUpgrades >= 2) freshToken = true;
      if (this.options.mode === 'auto' && this.failedUpgrades >= this.options.fallbackAfter) {
        this.kind = 'sse';
        this.fellBackAt = Date.now();
        fellBack = true;
      }
    }
    if (shedMs === null) this.attempt += 1;
    const delayMs = shedMs ?? reconnectDelayMs(this.attempt, backoff, this.options.random);
    return { stop: false, delayMs, freshToken, fellBack };
  }
}
