import type { ClientFrame, ServerFrame } from '@herald/protocol';
import type { AckOutbox } from './acks.js';
import { mintTicket } from './http.js';
import { ABNORMAL, type Dialer, refusalCode, type Transport, type TransportSink } from './transport.js';
import type { HeraldClientOptions, WebSocketClass } from './types.js';

/** @herald/protocol's WS_SUBPROTOCOL and WS_BEARER_PREFIX (the SDK carries no runtime dependency). */
export const SUBPROTOCOL = 'herald.v1';
export const BEARER_PREFIX = 'herald.bearer.';
/** What a subprotocol entry may hold: a JWT's base64url parts and dots do. */
const SUBPROTOCOL_TOKEN = /^[A-Za-z0-9._~+-]+$/;

/** The subprotocols an upgrade offers to carry `token` (ADR 0013): Herald's own first, the token after it. */
export function subprotocolsFor(token: string): string[] {
  return [SUBPROTOCOL, `${BEARER_PREFIX}${token}`];
}

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

export type Credentials = NonNullable<HeraldClientOptions['credentials']>;

export interface WebSocketDialerOptions {
  url: URL;
  credentials: Credentials;
  ticketsUrl: string;
  WebSocket: WebSocketClass | undefined;
  fetch: typeof fetch | undefined;
  acks: AckOutbox;
}

/** Opens WebSockets for one client; how the token rides (`credentials`) is kept across attempts. */
export class WebSocketDialer implements Dialer {
  readonly kind = 'websocket';
  readonly duplex = true;
  /** Changes for good when the token cannot ride as a subprotocol, or the server mints no tickets. */
  credentials: Credentials;

  constructor(readonly options: WebSocketDialerOptions) {
    this.credentials = options.credentials;
  }

  create(sink: TransportSink): Transport {
    return new WebSocketTransport(this, sink);
  }
}

/** One WebSocket attempt: the upgrade with the token (subprotocol, ticket or query), then frames in and out. */
class WebSocketTransport implements Transport {
  attempted = false;
  private socket: WebSocketLike | null = null;

  constructor(
    private readonly dialer: WebSocketDialer,
    private readonly sink: TransportSink,
  ) {}

  get writable(): boolean {
    return this.socket !== null && this.socket.readyState === 1;
  }

  open(token: string): void {
    void this.connect(token);
  }

  send(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== 1) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  sendAcks(): void {
    this.dialer.options.acks.sendOn((frame) => this.send(frame));
  }

  sendLastAcks(): void {
    // Not open: nothing can be written. What is not acked comes back as a redelivery.
  }

  close(code: number, reason: string): boolean {
    try {
      this.socket!.close(code, reason.slice(0, 120));
      return true;
    } catch {
      // An over-long reason in some browsers: the client finishes without the handshake.
      return false;
    }
  }

  drop(): void {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
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

  private async connect(token: string): Promise<void> {
    const { dialer, sink } = this;
    const url = new URL(dialer.options.url);
    if (dialer.credentials === 'protocol' && !SUBPROTOCOL_TOKEN.test(token)) {
      // Not a JWT: no subprotocol entry can hold it. A ticket can.
      dialer.credentials = 'ticket';
      sink.error({ message: 'the token cannot ride in Sec-WebSocket-Protocol: connecting with tickets' });
    }
    // Browsers can set no header on a WebSocket but Sec-WebSocket-Protocol: the token goes there, or a one-time
    // ticket in the query; never the token in the URL unless asked for.
    const protocols = dialer.credentials === 'protocol' ? subprotocolsFor(token) : undefined;
    const ticket = dialer.credentials === 'ticket' ? await this.freshTicket(token) : null;
    if (!sink.current()) return;
    if (ticket !== null) url.searchParams.set('ticket', ticket);
    else if (dialer.credentials === 'query') url.searchParams.set('token', token);
    else if (!protocols) return;
    let socket: WebSocketLike;
    try {
      const WebSocketImpl = dialer.options.WebSocket as unknown as new (
        url: string,
        protocols?: string[],
      ) => WebSocketLike;
      socket = protocols ? new WebSocketImpl(url.toString(), protocols) : new WebSocketImpl(url.toString());
    } catch (error) {
      // Not the error's message: some browsers quote the URL, and with it the token.
      sink.error({ message: 'the WebSocket could not be created', cause: error });
      sink.closed(ABNORMAL, 'WebSocket could not be created');
      return;
    }
    this.socket = socket;
    this.attempted = true;
    socket.onmessage = (event) => {
      if (!sink.current()) return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(event.data)) as ServerFrame;
      } catch {
        sink.unreadable('the server sent a frame that is not JSON');
        return;
      }
      sink.frame(frame);
    };
    socket.onclose = (event) => sink.closed(event.code, event.reason);
    // A close event follows every error; that is where it is handled.
    socket.onerror = () => undefined;
  }

  /**
   * A fresh ticket for this attempt (a refused upgrade may have used the last one), or null when minting
   * failed: then the attempt is over, closed as the upgrade's own refusal would be (a 401 asks for a fresh
   * token), and it does not count as a failed upgrade towards the SSE fallback. A 404 (a server without
   * tickets) switches this client to `?token=` and the attempt goes on.
   */
  private async freshTicket(token: string): Promise<string | null> {
    const { dialer, sink } = this;
    const { fetch: fetchImpl, ticketsUrl } = dialer.options;
    if (!fetchImpl) {
      sink.fatal(1002, 'no fetch to mint a ticket: pass options.fetch, or credentials: "query"');
      return null;
    }
    const minted = await mintTicket(fetchImpl, ticketsUrl, token);
    if (!sink.current()) return null;
    if (minted.ok) return minted.ticket;
    if (minted.status === 404 && minted.code === 'NOT_FOUND') {
      // Herald itself says there is no such route: a server from before tickets. Connect as it expects,
      // and say so once. (A proxy's 404, during a deploy say, is retried like any other refusal.)
      dialer.credentials = 'query';
      sink.error({
        message: `no ticket endpoint at ${ticketsUrl} (404): the token goes in the URL; upgrade the server`,
      });
      return null;
    }
    if (minted.status === 0) sink.closed(ABNORMAL, `ticket not minted: ${minted.message}`);
    else sink.closed(refusalCode(minted.status), `ticket refused (${minted.status}): ${minted.message}`);
    return null;
  }
}
