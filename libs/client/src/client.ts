import type { ClientFrame, ServerFrame, WelcomeFrame } from '@herald/protocol';
import { AckOutbox } from './acks.js';
import { DEFAULT_BACKOFF } from './backoff.js';
import { Dispatcher } from './dispatcher.js';
import { Emitter } from './emitter.js';
import { Watchdog } from './heartbeat.js';
import { httpUrlBeside, messageOf, webSocketUrl, withFeatures } from './http.js';
import { createInbox, type InboxClient } from './inbox-client.js';
import { Reconnects } from './reconnect.js';
import { SseDialer } from './sse-transport.js';
import { Subscriptions } from './subscriptions.js';
import { TokenKeeper } from './token.js';
import { ABNORMAL, type Dialer, type Transport, type TransportSink } from './transport.js';
import {
  ReadyState,
  type ClientEvents,
  type HeraldClientOptions,
  type NotificationHandler,
  type TransportKind,
  type WebSocketClass,
} from './types.js';
import { WebSocketDialer } from './websocket-transport.js';

// What the specs import from here (index.ts exports the public types from types.ts).
export { ReadyState, type HeraldClientOptions, type Notification } from './types.js';
export { BEARER_PREFIX, SUBPROTOCOL, subprotocolsFor } from './websocket-transport.js';

// The public facade: state, events, connect/close and the reconnect loop. The transports
// (websocket-transport.ts, sse-transport.ts), dispatcher, acks, subscriptions, token and inbox live beside it.

type Timer = ReturnType<typeof setTimeout>;

/**
 * A Herald connection that stays up: reconnects with backoff and jitter,
 * watches the heartbeat, hands each notification to the app once and in
 * `seq` order, acks it, resubscribes topics, and falls back to Server-Sent
 * Events where WebSockets are blocked. See docs/client.md.
 */
export class HeraldClient extends Emitter<ClientEvents> {
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;

  private readonly webSocket: WebSocketDialer;
  private readonly sse: SseDialer;
  private readonly connectTimeoutMs: number;
  private readonly acks = new AckOutbox(() => this.flushAcks());
  private readonly tokens: TokenKeeper;
  private readonly reconnects: Reconnects;
  private readonly dispatcher: Dispatcher;
  private readonly subscriptions: Subscriptions;
  private readonly watchdog: Watchdog;
  /** `client.inbox`, and the part of it the connection drives, when the options ask for it. */
  private readonly inboxParts: ReturnType<typeof createInbox> | null;

  private state: ReadyState = ReadyState.CLOSED;
  /** Bumped whenever a transport is abandoned: events of an old one are ignored. */
  private generation = 0;
  /** The transport of the current attempt, or null between attempts. */
  private active: Transport | null = null;
  private welcome: WelcomeFrame | null = null;
  private openedAt = 0;
  private stopping = false;
  private reconnectTimer: Timer | undefined;
  private welcomeTimer: Timer | undefined;

  constructor(options: HeraldClientOptions) {
    super();
    const url = webSocketUrl(options.url);
    if (options.token === undefined && options.getToken === undefined) {
      throw new TypeError('give a token, a getToken callback, or both');
    }
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    const fetchImpl = options.fetch ?? (typeof fetch === 'function' ? fetch.bind(globalThis) : undefined);
    const features = options.inbox ? ['inbox'] : [];
    const error = (event: ClientEvents['error']): void => this.emit('error', event);
    this.webSocket = new WebSocketDialer({
      url: withFeatures(url, features),
      credentials: options.credentials ?? 'protocol',
      ticketsUrl: options.ticketsUrl ?? httpUrlBeside(url, '/v1/tickets'),
      WebSocket: WebSocketImpl,
      fetch: fetchImpl,
      acks: this.acks,
    });
    this.sse = new SseDialer({
      fetch: fetchImpl,
      streamUrl: withFeatures(new URL(options.streamUrl ?? httpUrlBeside(url, '/v1/stream')), features).toString(),
      acksUrl: options.acksUrl ?? httpUrlBeside(url, '/v1/acks'),
      acks: this.acks,
      open: () => this.state === ReadyState.OPEN && this.dialer === this.sse,
      token: () => this.tokens.token,
      tokenRefused: () => {
        this.tokens.needFresh = true;
      },
      error,
    });
    this.reconnects = new Reconnects({
      mode: options.transport ?? 'auto',
      hasWebSocket: Boolean(WebSocketImpl),
      fallbackAfter: options.fallbackAfterFailures ?? 3,
      retryWebSocketAfterMs: options.retryWebSocketAfterMs ?? 300_000,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      random: options.random ?? Math.random,
      canRefreshToken: Boolean(options.getToken),
    });
    this.watchdog = new Watchdog(options.heartbeatMarginMs ?? 5000);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.tokens = new TokenKeeper({
      token: options.token,
      getToken: options.getToken,
      refreshBeforeMs: options.tokenRefreshBeforeMs ?? 60_000,
      sendAuth: (token) => this.subscriptions.auth(token),
      error,
    });
    this.dispatcher = new Dispatcher(this.acks, {
      ackMode: options.ackMode ?? 'auto',
      dedupWindow: options.dedupWindow ?? 10_000,
      stopping: () => this.stopping,
      ack: (id) => this.ack(id),
      error,
    });
    this.subscriptions = new Subscriptions(options.topics ?? [], {
      send: (frame) => this.send(frame),
      duplex: () => this.dialer.duplex,
    });
    this.inboxParts = !options.inbox
      ? null
      : createInbox(
          {
            fetch: fetchImpl,
            meUrl: options.meUrl ?? httpUrlBeside(url, '/v1/me'),
            token: () => this.tokens.current(),
            tokenRefused: () => (this.tokens.needFresh = true),
            canRefreshToken: Boolean(options.getToken),
          },
          { send: (frame) => this.send(frame), dedupWindow: options.dedupWindow ?? 10_000, error },
        );
  }

  /**
   * The user's synced inbox: its list, unread count and read state (docs/client.md, section 9). Needs
   * `inbox: true` in the options.
   */
  get inbox(): InboxClient {
    if (!this.inboxParts) throw new Error('the inbox is off: create the client with { inbox: true }');
    return this.inboxParts.inbox;
  }

  /** Like `WebSocket.readyState`: CONNECTING (also while waiting to reconnect), OPEN, CLOSING, CLOSED. */
  get readyState(): ReadyState {
    return this.state;
  }

  /** The transport in use now (or next). */
  get transport(): TransportKind {
    return this.reconnects.kind;
  }

  /** The server's `welcome` of the current connection, or null while not open. */
  get connection(): WelcomeFrame | null {
    return this.welcome;
  }

  /** Sets the handler; notifications that arrived before it wait for it. */
  onNotification(handler: NotificationHandler): () => void {
    return this.dispatcher.onNotification(handler);
  }

  /** Starts connecting (and keeps the connection up until `close()`). */
  connect(): void {
    // Still closing (a logout then a login, say): drop the old transport now and start afresh.
    if (this.state === ReadyState.CLOSING) this.finish(1000, 'client closed');
    if (this.state !== ReadyState.CLOSED) return;
    this.stopping = false;
    this.reconnects.reset();
    void this.openTransport();
  }

  /** Closes for good: no reconnect. Acks already queued are sent first where the transport allows. */
  close(code = 1000, reason = 'client closed'): void {
    if (this.state === ReadyState.CLOSED || this.state === ReadyState.CLOSING) return;
    if (code !== 1000 && (code < 3000 || code > 4999)) {
      throw new RangeError(`close code must be 1000 or 3000-4999 (the WebSocket API's rule), got ${code}`);
    }
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const active = this.active;
    if (active?.writable) {
      this.flushAcks();
      this.setState(ReadyState.CLOSING);
      // The handshake's end comes back through the transport, as any close does.
      if (active.close(code, reason)) return;
    } else if (this.state === ReadyState.OPEN) {
      // No handshake (SSE): one last try for the acks made so far.
      active?.sendLastAcks();
    }
    this.finish(code, reason);
  }

  /** Subscribes to a topic now and after every reconnect. Resolves when the server has it. */
  subscribe(topic: string): Promise<void> {
    return this.subscriptions.subscribe(topic);
  }

  unsubscribe(topic: string): Promise<void> {
    return this.subscriptions.unsubscribe(topic);
  }

  /** Acks a notification by id (manual mode; auto mode does it for you). Queued while disconnected. */
  ack(id: string): void {
    this.dispatcher.ack(id);
  }

  /** Where the next attempt goes: the one place that chooses between the transports. */
  private get dialer(): Dialer {
    return this.reconnects.kind === 'websocket' ? this.webSocket : this.sse;
  }

  private async openTransport(): Promise<void> {
    const generation = ++this.generation;
    this.reconnects.beforeAttempt();
    this.setState(ReadyState.CONNECTING);
    this.emit('connecting', { transport: this.reconnects.kind, attempt: this.reconnects.attempt });
    let token: string;
    try {
      token = await this.tokens.current();
    } catch (error) {
      if (generation !== this.generation || this.stopping) return;
      this.emit('error', { message: `getToken failed: ${messageOf(error)}`, cause: error });
      this.transportClosed(generation, ABNORMAL, 'no token');
      return;
    }
    if (generation !== this.generation || this.stopping) return;
    this.welcomeTimer = setTimeout(
      () => this.transportClosed(generation, ABNORMAL, `no welcome within ${this.connectTimeoutMs} ms`),
      this.connectTimeoutMs,
    );
    // Assigned before it starts: a transport that fails at once is dropped like any other.
    this.active = this.dialer.create(this.sinkFor(generation));
    this.active.open(token);
  }

  /** What the transport of attempt `generation` reports to; once the client has moved on, it is ignored. */
  private sinkFor(generation: number): TransportSink {
    const current = (): boolean => generation === this.generation;
    return {
      current,
      frame: (frame) => {
        if (current()) this.received(generation, frame);
      },
      unreadable: (message) => {
        if (!current()) return;
        // It may have been a notification: a `through` must not cover it unseen.
        this.acks.stopThrough();
        this.emit('error', { message });
      },
      heard: () => {
        if (current()) this.watchdog.heard();
      },
      closed: (code, reason) => this.transportClosed(generation, code, reason),
      fatal: (code, reason) => {
        if (current()) this.finish(code, reason);
      },
      error: (event) => this.emit('error', event),
    };
  }

  private received(generation: number, frame: ServerFrame): void {
    this.watchdog.heard();
    if (this.acks.answered(frame)) return;
    switch (frame.type) {
      case 'welcome':
        this.opened(generation, frame);
        return;
      case 'notification':
        this.dispatcher.arrived(frame);
        this.inboxParts?.sync.arrived(frame);
        return;
      case 'state':
        this.inboxParts?.sync.changed(frame);
        return;
      case 'ack':
        if (!this.subscriptions.answered(frame)) this.inboxParts?.sync.answered(frame);
        return;
      case 'error':
        if (this.subscriptions.answered(frame) || this.inboxParts?.sync.answered(frame)) return;
        this.emit('error', { message: frame.message, code: frame.code });
        return;
      case 'acks':
      case 'pong':
        return;
    }
  }

  private opened(generation: number, welcome: WelcomeFrame): void {
    clearTimeout(this.welcomeTimer);
    this.welcome = welcome;
    this.openedAt = Date.now();
    this.reconnects.opened();
    this.setState(ReadyState.OPEN);
    const current = (): boolean => generation === this.generation;
    this.watchdog.start(welcome.heartbeatMs, {
      current,
      ping: () => this.send({ type: 'ping' }),
      dead: (reason) => this.transportClosed(generation, ABNORMAL, reason),
    });
    const { duplex } = this.dialer;
    if (duplex) {
      this.subscriptions.opened();
      this.tokens.scheduleRefresh(current);
    } else {
      this.subscriptions.refuseAll();
    }
    // SSE acks go by POST, one way whatever the welcome offers.
    const features = duplex ? (welcome.features ?? []) : [];
    this.acks.opened(features.includes('ackThrough'), features.includes('quietAcks'));
    this.flushAcks();
    this.inboxParts?.sync.opened(welcome, duplex);
    this.emit('open', {
      transport: this.reconnects.kind,
      connectionId: welcome.connectionId,
      replicaId: welcome.replicaId,
      userId: welcome.userId,
      heartbeatMs: welcome.heartbeatMs,
    });
  }

  /** Writes a frame on a welcomed connection; false when there is none or it is listen only. */
  private send(frame: ClientFrame): boolean {
    return this.welcome !== null && this.active !== null && this.active.send(frame);
  }

  private flushAcks(): void {
    this.acks.cancel();
    if (this.acks.size === 0 || this.state !== ReadyState.OPEN) return;
    this.active?.sendAcks();
  }

  /** Every transport ends here, once: decide between reconnecting and stopping. */
  private transportClosed(generation: number, code: number, reason: string): void {
    if (generation !== this.generation) return;
    this.generation++;
    const wasOpen = this.welcome !== null;
    const openForMs = wasOpen ? Date.now() - this.openedAt : 0;
    const attempted = this.active?.attempted ?? false;
    this.dropTransport();
    this.subscriptions.connectionClosed();
    if (this.stopping) {
      this.finish(code, reason);
      return;
    }
    const next = this.reconnects.next({ code, reason, wasOpen, openForMs, attempted });
    if (next.stop) {
      this.finish(code, reason);
      return;
    }
    if (next.freshToken) this.tokens.needFresh = true;
    // Armed before the events: a listener that calls close() clears it.
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.openTransport();
    }, next.delayMs);
    this.setState(ReadyState.CONNECTING);
    if (next.fellBack) {
      this.emit('error', {
        message: `${this.reconnects.failedUpgrades} WebSocket attempts failed in a row; using Server-Sent Events`,
        code: 'FALLBACK_TO_SSE',
      });
    }
    if (this.state === ReadyState.CONNECTING && !this.stopping) {
      const { attempt, kind: transport } = this.reconnects;
      this.emit('reconnecting', { delayMs: next.delayMs, attempt, code, reason, transport });
    }
  }

  private dropTransport(): void {
    clearTimeout(this.welcomeTimer);
    this.welcomeTimer = undefined;
    this.tokens.cancel();
    this.watchdog.stop();
    this.acks.closed();
    this.welcome = null;
    this.inboxParts?.sync.connectionClosed();
    const active = this.active;
    this.active = null;
    active?.drop();
  }

  private finish(code: number, reason: string): void {
    this.generation++;
    this.dropTransport();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.stopping = false;
    this.subscriptions.clientClosed(code, reason);
    this.setState(ReadyState.CLOSED);
    this.emit('closed', { code, reason });
  }

  private setState(state: ReadyState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }
}
