import type {
  AcksResponse,
  ClientFrame,
  JsonValue,
  LimitCloseReason,
  NotificationFrame,
  ServerFrame,
  StreamCloseEvent,
  WelcomeFrame,
} from '@herald/protocol';
import { ACK_COALESCE_MS, ACK_HOLD_MS, AckOutbox, MAX_ACKS_PER_BATCH } from './acks.js';
import { BackoffOptions, DEFAULT_BACKOFF, reconnectDelayMs, shedDelayMs } from './backoff.js';
import { RecentIds } from './dedup.js';
import { Emitter } from './emitter.js';
import { errorMessageOf, httpUrlBeside, messageOf, mintTicket, parseJson } from './http.js';
import { SseParser } from './sse.js';
import { tokenExpiresAtMs } from './token.js';

/** The browser's `WebSocket.readyState` values, with the same meaning for the client as a whole. */
export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

export type TransportKind = 'websocket' | 'sse';

/** What the client needs of a WebSocket: the browser's, or the `ws` package's in Node. */
interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: `globalThis.WebSocket` in browsers, `import WebSocket from 'ws'` in Node. */
export type WebSocketClass = abstract new (url: string, protocols?: string[]) => object;

/** @herald/protocol's WS_SUBPROTOCOL and WS_BEARER_PREFIX (the SDK carries no runtime dependency). */
export const SUBPROTOCOL = 'herald.v1';
export const BEARER_PREFIX = 'herald.bearer.';
/** What a subprotocol entry may hold: a JWT's base64url parts and dots do. */
const SUBPROTOCOL_TOKEN = /^[A-Za-z0-9._~+-]+$/;

/** The subprotocols an upgrade offers to carry `token` (ADR 0013): Herald's own first, the token after it. */
export function subprotocolsFor(token: string): string[] {
  return [SUBPROTOCOL, `${BEARER_PREFIX}${token}`];
}

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

/** Close codes a reconnect cannot fix: the client is speaking the protocol wrongly. */
const FATAL_CODES = new Set([1002, 1003, 1007]);
const POLICY = 1008;
/**
 * The server is up but cannot serve now (a store is down): retried with backoff, on the same transport; or it
 * sheds a reconnect storm and says when to come back (`retry after 2400 ms`): retried then.
 */
const TRY_AGAIN_LATER = 1013;

/** The protocol's LimitCloseReason values, here so the SDK keeps no runtime dependency (the type keeps them equal). */
const LIMIT_CLOSE_REASONS: readonly (typeof LimitCloseReason)[keyof typeof LimitCloseReason][] = [
  'too many connections for this user',
  'rate limit exceeded',
];

/** A 1008 for a server limit (too many connections of the user, frame rate), not for the token. */
function isLimitClose(reason: string): boolean {
  return LIMIT_CLOSE_REASONS.some((limit) => reason.startsWith(limit));
}
const ABNORMAL = 1006;

/** The close code a refusal of the SSE stream stands for. */
function streamRefusalCode(status: number): number {
  if (status === 401 || status === 403) return POLICY; // the upgrade's refusals (1008 on a WebSocket)
  if (status === 400) return 1002; // this client's mistake
  if (status === 503) return TRY_AGAIN_LATER; // a replica draining or full, or no replica: come back later
  // Anything else (a proxy's 404 or 429 during a deploy, a 5xx) may pass too, so it is retried.
  return 1011;
}

/** setTimeout's largest delay; longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;
const SSE_NO_COMMANDS =
  'topic changes need the WebSocket: the SSE fallback cannot send commands (subscriptions made before stay in force)';

interface PendingCommand {
  frame: Extract<ClientFrame, { id?: string }>;
  resolve: () => void;
  reject: (error: Error) => void;
}

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

  private readonly url: URL;
  private readonly streamUrl: string;
  private readonly acksUrl: string;
  private readonly ticketsUrl: string;
  private credentials: 'protocol' | 'ticket' | 'query';
  private readonly pongUrl: string;
  private readonly WebSocketImpl: WebSocketClass | undefined;
  private readonly fetchImpl: typeof fetch | undefined;
  private readonly backoff: Required<BackoffOptions>;
  private readonly ackMode: 'auto' | 'manual';
  private readonly mode: 'auto' | TransportKind;
  private readonly fallbackAfter: number;
  private readonly retryWebSocketAfterMs: number;
  private readonly heartbeatMarginMs: number;
  private readonly connectTimeoutMs: number;
  private readonly refreshBeforeMs: number;
  private readonly random: () => number;
  private readonly getToken: TokenSource | undefined;

  private state: ReadyState = ReadyState.CLOSED;
  private kind: TransportKind;
  private token: string | undefined;
  private needFreshToken = false;
  /** Bumped whenever a transport is abandoned: events of an old one are ignored. */
  private generation = 0;
  private socket: WebSocketLike | null = null;
  private stream: AbortController | null = null;
  private welcome: WelcomeFrame | null = null;
  private openedAt = 0;
  private lastReceivedAt = 0;
  private attempt = 0;
  private failedUpgrades = 0;
  /** Set when this attempt really tried a WebSocket (not, say, a failed getToken). */
  private upgradeAttempted = false;
  /** When `auto` fell back to SSE; the WebSocket is tried again after retryWebSocketAfterMs. */
  private fellBackAt: number | undefined;
  private lastTickAt = 0;
  private policyCloses = 0;
  private stopping = false;
  private lastEventId: string | undefined;

  private reconnectTimer: Timer | undefined;
  private welcomeTimer: Timer | undefined;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private refreshTimer: Timer | undefined;
  private ackRetryTimer: Timer | undefined;

  private handler: NotificationHandler | undefined;
  private readonly seen: RecentIds;
  private readonly acked: RecentIds;
  private readonly inProgress = new Set<string>();
  private queue: NotificationFrame[] = [];
  private dispatching = false;
  private readonly acks = new AckOutbox(() => this.flushAcks());
  private postingAcks = false;
  private readonly topics = new Set<string>();
  private readonly commands = new Map<string, PendingCommand>();
  private commandSeq = 0;

  constructor(options: HeraldClientOptions) {
    super();
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new TypeError(`url must be an absolute ws:// or wss:// URL, got ${JSON.stringify(options.url)}`);
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      throw new TypeError(`url must start with ws:// or wss://, got ${JSON.stringify(options.url)}`);
    }
    if (options.token === undefined && options.getToken === undefined) {
      throw new TypeError('give a token, a getToken callback, or both');
    }
    this.url = url;
    this.streamUrl = options.streamUrl ?? httpUrlBeside(url, '/v1/stream');
    this.acksUrl = options.acksUrl ?? httpUrlBeside(url, '/v1/acks');
    this.ticketsUrl = options.ticketsUrl ?? httpUrlBeside(url, '/v1/tickets');
    this.credentials = options.credentials ?? 'protocol';
    this.pongUrl = this.streamUrl.replace(/\/?(\?.*)?$/, '/pong');
    this.WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    this.fetchImpl = options.fetch ?? (typeof fetch === 'function' ? fetch.bind(globalThis) : undefined);
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.ackMode = options.ackMode ?? 'auto';
    this.mode = options.transport ?? 'auto';
    this.kind = this.mode === 'sse' ? 'sse' : 'websocket';
    if (this.kind === 'websocket' && !this.WebSocketImpl) {
      if (this.mode === 'websocket')
        throw new TypeError('no WebSocket class: pass options.WebSocket (in Node, the ws package)');
      this.kind = 'sse';
    }
    this.fallbackAfter = options.fallbackAfterFailures ?? 3;
    this.retryWebSocketAfterMs = options.retryWebSocketAfterMs ?? 300_000;
    this.heartbeatMarginMs = options.heartbeatMarginMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.refreshBeforeMs = options.tokenRefreshBeforeMs ?? 60_000;
    this.random = options.random ?? Math.random;
    this.getToken = options.getToken;
    this.token = options.token;
    this.seen = new RecentIds(options.dedupWindow ?? 10_000);
    this.acked = new RecentIds(options.dedupWindow ?? 10_000);
    for (const topic of options.topics ?? []) this.topics.add(topic);
  }

  /** Like `WebSocket.readyState`: CONNECTING (also while waiting to reconnect), OPEN, CLOSING, CLOSED. */
  get readyState(): ReadyState {
    return this.state;
  }

  /** The transport in use now (or next). */
  get transport(): TransportKind {
    return this.kind;
  }

  /** The server's `welcome` of the current connection, or null while not open. */
  get connection(): WelcomeFrame | null {
    return this.welcome;
  }

  /** Sets the handler; notifications that arrived before it wait for it. */
  onNotification(handler: NotificationHandler): () => void {
    this.handler = handler;
    this.scheduleDispatch();
    return () => {
      if (this.handler === handler) this.handler = undefined;
    };
  }

  /** Starts connecting (and keeps the connection up until `close()`). */
  connect(): void {
    // Still closing (a logout then a login, say): drop the old transport now and start afresh.
    if (this.state === ReadyState.CLOSING) this.finish(1000, 'client closed');
    if (this.state !== ReadyState.CLOSED) return;
    this.stopping = false;
    this.kind = this.mode === 'sse' || !this.WebSocketImpl ? 'sse' : 'websocket';
    this.fellBackAt = undefined;
    this.attempt = 0;
    this.failedUpgrades = 0;
    this.policyCloses = 0;
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
    if (this.socket && this.socket.readyState === 1) {
      this.flushAcks();
      this.setState(ReadyState.CLOSING);
      try {
        this.socket.close(code, reason.slice(0, 120));
        return;
      } catch {
        // An over-long reason in some browsers: finish without the handshake.
      }
    } else if (this.kind === 'sse' && this.state === ReadyState.OPEN && this.acks.size > 0) {
      // One last POST for the acks made so far; what it cannot send comes back as a redelivery.
      const ids = this.acks.first(MAX_ACKS_PER_BATCH);
      this.acks.sent(ids);
      void this.postAckBatch(ids, this.token).catch(() => undefined);
    }
    this.finish(code, reason);
  }

  /** Subscribes to a topic now and after every reconnect. Resolves when the server has it. */
  subscribe(topic: string): Promise<void> {
    this.topics.add(topic);
    return this.command({ type: 'subscribe', channel: topic });
  }

  unsubscribe(topic: string): Promise<void> {
    this.topics.delete(topic);
    return this.command({ type: 'unsubscribe', channel: topic });
  }

  /** Acks a notification by id (manual mode; auto mode does it for you). Queued while disconnected. */
  ack(id: string): void {
    if (this.acked.has(id)) return;
    this.acked.add(id);
    this.queueAck(id);
  }

  // -------------------------------------------------------------------------
  // Connecting
  // -------------------------------------------------------------------------

  private async openTransport(): Promise<void> {
    const generation = ++this.generation;
    this.upgradeAttempted = false;
    if (this.fellBackAt !== undefined && Date.now() - this.fellBackAt >= this.retryWebSocketAfterMs) {
      // The network that blocked WebSockets may be gone (a laptop moves on): try again.
      this.fellBackAt = undefined;
      this.failedUpgrades = 0;
      this.kind = 'websocket';
    }
    this.setState(ReadyState.CONNECTING);
    this.emit('connecting', { transport: this.kind, attempt: this.attempt });
    let token: string;
    try {
      token = await this.currentToken();
    } catch (error) {
      if (generation !== this.generation || this.stopping) return;
      this.emit('error', { message: `getToken failed: ${messageOf(error)}`, cause: error });
      this.transportClosed(generation, ABNORMAL, 'no token');
      return;
    }
    if (generation !== this.generation || this.stopping) return;
    this.welcomeTimer = setTimeout(
      () => this.abandon(generation, ABNORMAL, `no welcome within ${this.connectTimeoutMs} ms`),
      this.connectTimeoutMs,
    );
    if (this.kind === 'websocket') void this.openWebSocket(token, generation);
    else void this.openStream(token, generation);
  }

  /** The token to connect with, fetching a fresh one when it is missing, refused or about to expire. */
  private async currentToken(): Promise<string> {
    const expiresAt = this.token === undefined ? undefined : tokenExpiresAtMs(this.token);
    const stale = expiresAt !== undefined && expiresAt - Date.now() < Math.min(this.refreshBeforeMs, 5000);
    if (this.getToken && (this.token === undefined || this.needFreshToken || stale)) {
      this.token = await this.getToken();
      this.needFreshToken = false;
    }
    return this.token!;
  }

  private async openWebSocket(token: string, generation: number): Promise<void> {
    const url = new URL(this.url);
    if (this.credentials === 'protocol' && !SUBPROTOCOL_TOKEN.test(token)) {
      // Not a JWT: no subprotocol entry can hold it. A ticket can.
      this.credentials = 'ticket';
      this.emit('error', { message: 'the token cannot ride in Sec-WebSocket-Protocol: connecting with tickets' });
    }
    // Browsers can set no header on a WebSocket but Sec-WebSocket-Protocol: the token goes there, or a one-time
    // ticket in the query; never the token in the URL unless asked for.
    const protocols = this.credentials === 'protocol' ? subprotocolsFor(token) : undefined;
    const ticket = this.credentials === 'ticket' ? await this.mintTicket(token, generation) : null;
    if (generation !== this.generation) return;
    if (ticket !== null) url.searchParams.set('ticket', ticket);
    else if (this.credentials === 'query') url.searchParams.set('token', token);
    else if (!protocols) return;
    let socket: WebSocketLike;
    try {
      const WebSocketImpl = this.WebSocketImpl as unknown as new (url: string, protocols?: string[]) => WebSocketLike;
      socket = protocols ? new WebSocketImpl(url.toString(), protocols) : new WebSocketImpl(url.toString());
    } catch (error) {
      // Not the error's message: some browsers quote the URL, and with it the token.
      this.emit('error', { message: 'the WebSocket could not be created', cause: error });
      this.transportClosed(generation, ABNORMAL, 'WebSocket could not be created');
      return;
    }
    this.socket = socket;
    this.upgradeAttempted = true;
    socket.onmessage = (event) => {
      if (generation !== this.generation) return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(event.data)) as ServerFrame;
      } catch {
        // It may have been a notification: a `through` must not cover it unseen.
        this.acks.stopThrough();
        this.emit('error', { message: 'the server sent a frame that is not JSON' });
        return;
      }
      this.received(generation, frame);
    };
    socket.onclose = (event) => this.transportClosed(generation, event.code, event.reason);
    // A close event follows every error; that is where it is handled.
    socket.onerror = () => undefined;
  }

  /**
   * A fresh ticket for this attempt (a refused upgrade may have used the last one), or null when minting
   * failed: then the attempt is over, closed as the upgrade's own refusal would be (a 401 asks for a fresh
   * token), and it does not count as a failed upgrade towards the SSE fallback. A 404 (a server without
   * tickets) switches this client to `?token=` and the attempt goes on.
   */
  private async mintTicket(token: string, generation: number): Promise<string | null> {
    if (!this.fetchImpl) {
      this.finish(1002, 'no fetch to mint a ticket: pass options.fetch, or credentials: "query"');
      return null;
    }
    const minted = await mintTicket(this.fetchImpl, this.ticketsUrl, token);
    if (generation !== this.generation) return null;
    if (minted.ok) return minted.ticket;
    if (minted.status === 404 && minted.code === 'NOT_FOUND') {
      // Herald itself says there is no such route: a server from before tickets. Connect as it expects,
      // and say so once. (A proxy's 404, during a deploy say, is retried like any other refusal.)
      this.credentials = 'query';
      this.emit('error', {
        message: `no ticket endpoint at ${this.ticketsUrl} (404): the token goes in the URL; upgrade the server`,
      });
      return null;
    }
    if (minted.status === 0) this.transportClosed(generation, ABNORMAL, `ticket not minted: ${minted.message}`);
    else {
      const reason = `ticket refused (${minted.status}): ${minted.message}`;
      this.transportClosed(generation, streamRefusalCode(minted.status), reason);
    }
    return null;
  }

  private async openStream(token: string, generation: number): Promise<void> {
    if (!this.fetchImpl) {
      this.finish(1002, 'no fetch for the SSE fallback: pass options.fetch');
      return;
    }
    const controller = new AbortController();
    this.stream = controller;
    const headers: Record<string, string> = { Accept: 'text/event-stream', Authorization: `Bearer ${token}` };
    if (this.lastEventId !== undefined) headers['Last-Event-ID'] = this.lastEventId;
    let closeEvent: StreamCloseEvent | undefined;
    try {
      const response = await this.fetchImpl(this.streamUrl, { headers, signal: controller.signal });
      if (!response.ok || !response.body) {
        const message = await errorMessageOf(response);
        const code = streamRefusalCode(response.status);
        this.transportClosed(generation, code, `stream refused (${response.status}): ${message}`);
        return;
      }
      const parser = new SseParser(
        (event) => {
          if (generation !== this.generation) return;
          if (event.event === 'close') {
            closeEvent = parseJson<StreamCloseEvent>(event.data);
            return;
          }
          if (event.id !== undefined) this.lastEventId = event.id;
          const frame = parseJson<ServerFrame>(event.data);
          if (frame) this.received(generation, frame);
          else this.emit('error', { message: 'the server sent an event that is not JSON' });
        },
        () => {
          if (generation !== this.generation) return;
          this.lastReceivedAt = Date.now();
          void this.answerHeartbeat(generation);
        },
      );
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || generation !== this.generation) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch (error) {
      if (generation === this.generation && !controller.signal.aborted) {
        this.transportClosed(generation, ABNORMAL, `stream failed: ${messageOf(error)}`);
        return;
      }
    }
    this.transportClosed(generation, closeEvent?.code ?? ABNORMAL, closeEvent?.reason ?? 'stream ended');
  }

  /**
   * Answers an SSE heartbeat (`POST /v1/stream/pong`), so the server can tell
   * a live stream from one whose client vanished. Driven by the server's
   * heartbeat arriving, not by a timer, so a throttled background tab answers
   * in time. A 404 means no replica holds the stream any more.
   */
  private async answerHeartbeat(generation: number): Promise<void> {
    const connectionId = this.welcome?.connectionId;
    if (!this.fetchImpl || connectionId === undefined) return;
    try {
      const response = await this.fetchImpl(this.pongUrl, {
        method: 'POST',
        headers: { Authorization: `Bearer ${this.token ?? ''}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ connectionId }),
      });
      if (response.status === 404) this.abandon(generation, ABNORMAL, 'the server no longer holds this stream');
    } catch {
      // The next heartbeat tries again; a stream that is really gone ends by itself.
    }
  }

  /** Gives up on the current transport without waiting for it (dead peer, no welcome). */
  private abandon(generation: number, code: number, reason: string): void {
    if (generation !== this.generation) return;
    this.transportClosed(generation, code, reason);
  }

  // -------------------------------------------------------------------------
  // Receiving
  // -------------------------------------------------------------------------

  private received(generation: number, frame: ServerFrame): void {
    this.lastReceivedAt = Date.now();
    if (this.acks.answered(frame)) return;
    switch (frame.type) {
      case 'welcome':
        this.opened(generation, frame);
        return;
      case 'notification':
        this.notification(frame);
        return;
      case 'ack': {
        const command = this.commands.get(frame.id);
        if (command) {
          this.commands.delete(frame.id);
          command.resolve();
        }
        return;
      }
      case 'error': {
        const command = frame.id === undefined ? undefined : this.commands.get(frame.id);
        if (command && frame.id !== undefined) {
          this.commands.delete(frame.id);
          // A refused subscribe is not sent again on every reconnect.
          if (command.frame.type === 'subscribe') this.topics.delete(command.frame.channel);
          command.reject(new Error(`${frame.code}: ${frame.message}`));
          return;
        }
        this.emit('error', { message: frame.message, code: frame.code });
        return;
      }
      case 'acks':
      case 'pong':
        return;
    }
  }

  private opened(generation: number, welcome: WelcomeFrame): void {
    clearTimeout(this.welcomeTimer);
    this.welcome = welcome;
    this.openedAt = Date.now();
    if (this.kind === 'websocket') this.failedUpgrades = 0;
    this.setState(ReadyState.OPEN);
    this.startWatchdog(generation, welcome.heartbeatMs);
    if (this.kind === 'websocket') {
      for (const topic of this.topics) {
        const pending = [...this.commands.values()].some(
          (c) => c.frame.type === 'subscribe' && c.frame.channel === topic,
        );
        if (!pending) this.send({ type: 'subscribe', channel: topic });
      }
      for (const command of this.commands.values()) this.send(command.frame);
      this.scheduleTokenRefresh(generation);
    } else {
      for (const [id, command] of this.commands) {
        this.commands.delete(id);
        command.reject(new Error(SSE_NO_COMMANDS));
      }
    }
    const features = this.kind === 'websocket' ? (welcome.features ?? []) : [];
    this.acks.opened(features.includes('ackThrough'), features.includes('quietAcks'));
    this.flushAcks();
    this.emit('open', {
      transport: this.kind,
      connectionId: welcome.connectionId,
      replicaId: welcome.replicaId,
      userId: welcome.userId,
      heartbeatMs: welcome.heartbeatMs,
    });
  }

  private notification(frame: NotificationFrame): void {
    this.acks.arrived(frame.id);
    // Closing: the app is done with us; what it has not acked comes back next session.
    if (this.stopping) return;
    if (this.seen.has(frame.id)) {
      // Sent again because our ack did not arrive: the app has it, so only the ack is repeated.
      if (this.ackMode === 'auto' || this.acked.has(frame.id)) this.queueAck(frame.id);
      return;
    }
    if (this.inProgress.has(frame.id) || this.queue.some((q) => q.id === frame.id)) return;
    let index = this.queue.length;
    while (index > 0 && this.queue[index - 1]!.seq > frame.seq) index--;
    this.queue.splice(index, 0, frame);
    this.scheduleDispatch();
  }

  private scheduleDispatch(): void {
    // A microtask: frames that arrived in the same read are all queued (and sorted) first.
    queueMicrotask(() => void this.dispatch());
  }

  /** Hands queued notifications to the handler one at a time, lowest seq first. */
  private async dispatch(): Promise<void> {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.queue.length > 0 && this.handler) {
        const frame = this.queue.shift()!;
        const handler = this.handler;
        this.inProgress.add(frame.id);
        try {
          await handler(this.toNotification(frame));
          this.seen.add(frame.id);
          if (this.ackMode === 'auto') this.ack(frame.id);
        } catch (error) {
          // Not acked: the server sends it again later, and the handler gets another chance.
          this.emit('error', {
            message: `notification handler failed for ${frame.id}: ${messageOf(error)}`,
            cause: error,
          });
        } finally {
          this.inProgress.delete(frame.id);
        }
        // A burst's acks go out together soon after it is handled (or by the hold timer, see queueAck).
        if (this.queue.length === 0) this.acks.flushWithin(ACK_COALESCE_MS);
      }
    } finally {
      this.dispatching = false;
      this.acks.flushWithin(ACK_COALESCE_MS);
    }
  }

  private toNotification(frame: NotificationFrame): Notification {
    const notification: Notification = {
      id: frame.id,
      seq: frame.seq,
      event: frame.event,
      payload: frame.payload,
      timestamp: frame.timestamp,
      attempt: frame.attempt,
      ack: () => this.ack(frame.id),
    };
    if (frame.topic !== undefined) notification.topic = frame.topic;
    return notification;
  }

  // -------------------------------------------------------------------------
  // Sending
  // -------------------------------------------------------------------------

  private send(frame: ClientFrame): boolean {
    if (this.kind !== 'websocket' || !this.socket || this.socket.readyState !== 1 || !this.welcome) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  private command(frame: PendingCommand['frame']): Promise<void> {
    const id = `c${++this.commandSeq}`;
    const withId = { ...frame, id };
    const done = new Promise<void>((resolve, reject) => {
      if (this.kind === 'sse') {
        reject(new Error(SSE_NO_COMMANDS));
        return;
      }
      this.commands.set(id, { frame: withId, resolve, reject });
      // Not open yet: sent on the next welcome.
      this.send(withId);
    });
    // A caller that does not await must not get an unhandled rejection when the client closes.
    done.catch(() => undefined);
    return done;
  }

  private queueAck(id: string): void {
    // Acks wait ACK_COALESCE_MS for others to go with them. While a burst is being handled, they wait for the
    // end of it, and at most ACK_HOLD_MS however long the next handler takes.
    this.acks.add(id, this.dispatching && this.queue.length > 0 ? ACK_HOLD_MS : ACK_COALESCE_MS);
  }

  private flushAcks(): void {
    this.acks.cancel();
    if (this.acks.size === 0 || this.state !== ReadyState.OPEN) return;
    if (this.kind === 'websocket') this.acks.sendOn((frame) => this.send(frame));
    else void this.postAcks();
  }

  /** SSE acks: POST /v1/acks; acks made while one is in flight go together in the next. */
  private async postAcks(): Promise<void> {
    if (this.postingAcks || !this.fetchImpl) return;
    this.postingAcks = true;
    try {
      while (this.acks.size > 0 && this.state === ReadyState.OPEN && this.kind === 'sse') {
        const ids = this.acks.first(MAX_ACKS_PER_BATCH);
        const status = await this.postAckBatch(ids, this.token);
        if (status === 'retry') {
          this.ackRetryTimer = setTimeout(() => this.flushAcks(), 1000);
          return;
        }
        this.acks.sent(ids);
      }
    } finally {
      this.postingAcks = false;
    }
  }

  /**
   * One POST. 'done' when the batch needs no resending: accepted, or refused
   * as malformed (sending it again cannot help; the server redelivers and the
   * client acks again). 'retry' on a network failure, 5xx or 429; a 401 also
   * asks for a fresh token at the next connect.
   */
  private async postAckBatch(ids: string[], token: string | undefined): Promise<'done' | 'retry'> {
    let response: Response;
    try {
      response = await this.fetchImpl!(this.acksUrl, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token ?? ''}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ ids }),
      });
    } catch (error) {
      this.emit('error', { message: `acks not sent, retrying: ${messageOf(error)}`, cause: error });
      return 'retry';
    }
    if (response.ok) {
      const body = parseJson<AcksResponse>(await response.text().catch(() => ''));
      for (const result of body?.results ?? []) {
        if (result.status === 'forbidden') {
          this.emit('error', { message: `ack refused for ${result.id}`, code: 'FORBIDDEN' });
        }
      }
      return 'done';
    }
    const message = `POST acks answered ${response.status}: ${await errorMessageOf(response)}`;
    if (response.status === 401) this.needFreshToken = true;
    if (response.status === 401 || response.status === 429 || response.status >= 500) {
      this.emit('error', { message: `${message}; retrying` });
      return 'retry';
    }
    this.emit('error', { message: `${message}; these acks are dropped (the server sends them again)` });
    return 'done';
  }

  // -------------------------------------------------------------------------
  // Staying up
  // -------------------------------------------------------------------------

  /**
   * One timer per client. The server pings at `heartbeatMs` (invisible to a
   * browser) and sends SSE comments as often; a WebSocket client pings when
   * quiet for half an interval, so a live link is never silent for long. Past
   * the interval plus the margin, the connection is dead.
   */
  private startWatchdog(generation: number, heartbeatMs: number): void {
    clearInterval(this.watchdog);
    const limit = heartbeatMs + this.heartbeatMarginMs;
    const every = Math.max(100, Math.floor(heartbeatMs / 4));
    this.lastTickAt = Date.now();
    this.watchdog = setInterval(() => {
      if (generation !== this.generation) return;
      const now = Date.now();
      const late = now - this.lastTickAt > 2 * every;
      this.lastTickAt = now;
      const silent = now - this.lastReceivedAt;
      if (late) {
        // A throttled background tab, a sleeping laptop: our own timer was late, so the silence is
        // not the server's. Ask, and judge at a later tick.
        this.send({ type: 'ping' });
        this.lastReceivedAt = Math.max(this.lastReceivedAt, now - heartbeatMs / 2);
      } else if (silent > limit) {
        this.abandon(generation, ABNORMAL, `nothing from the server for ${silent} ms (heartbeat ${heartbeatMs} ms)`);
      } else if (silent >= heartbeatMs / 2) {
        this.send({ type: 'ping' });
      }
    }, every);
  }

  /** Before the token expires, a fresh one goes in-band (`auth` frame): no reconnect. */
  private scheduleTokenRefresh(generation: number): void {
    clearTimeout(this.refreshTimer);
    const expiresAt = this.token === undefined ? undefined : tokenExpiresAtMs(this.token);
    if (!this.getToken || expiresAt === undefined) return;
    const lifetime = expiresAt - Date.now();
    // Ahead of expiry by refreshBeforeMs, but no sooner than half-way for short tokens (no refresh loop).
    const due = Math.max(1000, lifetime - this.refreshBeforeMs, lifetime / 2);
    if (due > MAX_TIMER_MS) {
      // Too far for one timer: look again later.
      this.refreshTimer = setTimeout(() => this.scheduleTokenRefresh(generation), MAX_TIMER_MS);
      return;
    }
    this.refreshTimer = setTimeout(() => void this.refreshToken(generation), due);
  }

  private async refreshToken(generation: number): Promise<void> {
    try {
      const token = await this.getToken!();
      if (generation !== this.generation) return;
      const id = `c${++this.commandSeq}`;
      const accepted = new Promise<void>((resolve, reject) => {
        this.commands.set(id, { frame: { type: 'auth', token, id }, resolve, reject });
      });
      if (!this.send({ type: 'auth', token, id })) {
        this.commands.delete(id);
        // Not connected now: the fresh token serves the next connect.
        this.token = token;
        return;
      }
      await accepted;
      this.token = token;
      this.scheduleTokenRefresh(generation);
    } catch (error) {
      // The server closes with 1008 at expiry; the reconnect then fetches a fresh token.
      this.emit('error', { message: `token refresh failed: ${messageOf(error)}`, cause: error });
    }
  }

  /** Every transport ends here, once: decide between reconnecting and stopping. */
  private transportClosed(generation: number, code: number, reason: string): void {
    if (generation !== this.generation) return;
    this.generation++;
    const wasOpen = this.welcome !== null;
    const openFor = wasOpen ? Date.now() - this.openedAt : 0;
    this.dropTransport();
    // An `auth` frame in flight is moot now; subscribes wait for the next welcome.
    for (const [id, command] of this.commands) {
      if (command.frame.type === 'auth') {
        this.commands.delete(id);
        command.reject(new Error('connection closed'));
      }
    }
    if (this.stopping) {
      this.finish(code, reason);
      return;
    }
    if (FATAL_CODES.has(code)) {
      this.finish(code, reason);
      return;
    }
    if (openFor >= this.backoff.stableAfterMs) {
      this.attempt = 0;
      this.policyCloses = 0;
    }
    if (code === POLICY && !isLimitClose(reason)) {
      // A fresh token may fix it, once; a second policy close in a row means it cannot.
      // (A limit close is not about the token: it is retried with backoff like any other.)
      this.policyCloses += 1;
      if (!this.getToken || this.policyCloses > 1) {
        this.finish(code, reason);
        return;
      }
      this.needFreshToken = true;
    }
    let fellBack = false;
    // A replica shedding a storm says when to come back: that delay, and this attempt does not count as failed.
    const shedMs = code === TRY_AGAIN_LATER ? shedDelayMs(reason, this.backoff) : null;
    if (code === TRY_AGAIN_LATER) {
      // The upgrade went through and the server asks to wait: neither a refused token nor a network that
      // blocks WebSockets, so it ends a run of failed upgrades instead of adding to it.
      if (this.kind === 'websocket') this.failedUpgrades = 0;
    } else if (!wasOpen && this.kind === 'websocket' && this.upgradeAttempted) {
      this.failedUpgrades += 1;
      // A browser sees a refused upgrade (401) as 1006: after two in a row, try a fresh token too.
      if (this.failedUpgrades >= 2) this.needFreshToken = true;
      if (this.mode === 'auto' && this.failedUpgrades >= this.fallbackAfter) {
        this.kind = 'sse';
        this.fellBackAt = Date.now();
        fellBack = true;
      }
    }
    if (shedMs === null) this.attempt += 1;
    const delayMs = shedMs ?? reconnectDelayMs(this.attempt, this.backoff, this.random);
    // Armed before the events: a listener that calls close() clears it.
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.openTransport();
    }, delayMs);
    this.setState(ReadyState.CONNECTING);
    if (fellBack) {
      this.emit('error', {
        message: `${this.failedUpgrades} WebSocket attempts failed in a row; using Server-Sent Events`,
        code: 'FALLBACK_TO_SSE',
      });
    }
    if (this.state === ReadyState.CONNECTING && !this.stopping) {
      this.emit('reconnecting', { delayMs, attempt: this.attempt, code, reason, transport: this.kind });
    }
  }

  private dropTransport(): void {
    clearTimeout(this.welcomeTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.ackRetryTimer);
    clearInterval(this.watchdog);
    this.welcomeTimer = this.refreshTimer = this.ackRetryTimer = this.watchdog = undefined;
    this.acks.closed();
    this.welcome = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onmessage = socket.onclose = null;
      // Never null: `ws` emits 'error' when a connecting socket is closed, and an 'error' with no
      // listener would crash Node.
      socket.onerror = () => undefined;
      if (socket.readyState === 0 || socket.readyState === 1) {
        try {
          socket.close(4000, 'abandoned by the client');
        } catch {
          // Already failing: nothing more to release.
        }
      }
    }
    this.stream?.abort();
    this.stream = null;
  }

  private finish(code: number, reason: string): void {
    this.generation++;
    this.dropTransport();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.stopping = false;
    for (const command of this.commands.values()) command.reject(new Error(`client closed (${code}): ${reason}`));
    this.commands.clear();
    this.setState(ReadyState.CLOSED);
    this.emit('closed', { code, reason });
  }

  private setState(state: ReadyState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }
}
